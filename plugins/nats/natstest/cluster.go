// Package natstest runs a JetStream cluster of embedded nats-server nodes on 127.0.0.1, for the
// fleet's tests, benchmark and demo. Nodes can be stopped and started again on the same ports
// and storage, as an operator restarting a server would.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a running set of nodes.
type Cluster struct {
	dir         string
	clientPorts []int
	routePorts  []int
	configure   func(*server.Options)

	mu    sync.Mutex
	nodes []*server.Server // nil: stopped
}

// Start starts n nodes (1 is a single server without routes) storing under dir, and waits
// until JetStream has a meta leader.
func Start(dir string, n int) (*Cluster, error) { return StartWith(dir, n, nil) }

// StartWith is Start with each node's options changed by configure (users, tokens, TLS).
func StartWith(dir string, n int, configure func(*server.Options)) (*Cluster, error) {
	if n < 1 {
		return nil, errors.New("natstest: at least one node")
	}
	c := &Cluster{dir: dir, nodes: make([]*server.Server, n), configure: configure}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c.clientPorts, c.routePorts = ports[:n], ports[n:]
	for i := range n {
		if err := c.StartNode(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.WaitReady(30 * time.Second); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// URLs returns the client URLs of every node, running or not.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.clientPorts))
	for i, p := range c.clientPorts {
		out[i] = "nats://127.0.0.1:" + strconv.Itoa(p)
	}
	return out
}

// HCLServers returns the URLs as an HCL list.
func (c *Cluster) HCLServers() string {
	return `["` + strings.Join(c.URLs(), `", "`) + `"]`
}

// StartNode starts node i (again) on its ports and storage.
func (c *Cluster) StartNode(i int) error {
	n := len(c.clientPorts)
	opts := &server.Options{
		ServerName: fmt.Sprintf("n%d", i+1),
		Host:       "127.0.0.1",
		Port:       c.clientPorts[i],
		JetStream:  true,
		StoreDir:   filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
		NoSigs:     true,
		NoLog:      true,
		// JetStream limits sized for a test machine.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	if n > 1 {
		opts.Cluster = server.ClusterOpts{Name: "tda-fleet", Host: "127.0.0.1", Port: c.routePorts[i]}
		for j, p := range c.routePorts {
			if j != i {
				u, _ := url.Parse("nats://127.0.0.1:" + strconv.Itoa(p))
				opts.Routes = append(opts.Routes, u)
			}
		}
	}
	if c.configure != nil {
		c.configure(opts)
	}
	if err := os.MkdirAll(opts.StoreDir, 0o755); err != nil {
		return err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("natstest: node %d: %w", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("natstest: node %d did not accept connections", i+1)
	}
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
	return nil
}

// StopNode shuts node i down (its storage stays).
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.StopNode(i)
	}
}

// WaitReady waits until a running node is the JetStream meta leader and every running node is
// current with it (a single server is ready at once).
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		leader, current, running := false, true, 0
		for _, s := range c.nodes {
			if s == nil {
				continue
			}
			running++
			if !s.JetStreamIsClustered() {
				leader = true
				continue
			}
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		c.mu.Unlock()
		if running > 0 && leader && current {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("natstest: no JetStream meta leader elected")
}

// freePorts returns n ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
