package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tda-dev/tda/agent/api"
	"github.com/tda-dev/tda/agent/ops"
)

// ServeOptions describe what to serve.
type ServeOptions struct {
	Ops ops.Operations
	// Repairs serves the repair routes (nil: they answer 503).
	Repairs ops.Repairs
	// Socket is the unix socket path ("" for none). Only the agent, which holds the state
	// store, serves it.
	Socket string
	// HTTP is the http block (nil: no HTTP listener).
	HTTP *HTTPSettings
	// Listen overrides HTTP.Listen.
	Listen string
	// UI is the web panel.
	UI        http.Handler
	Gatherers prometheus.Gatherers
	Logger    hclog.Logger
}

// Servers are the running listeners.
type Servers struct {
	socket string
	// Addr is the HTTP listener's address ("" without one).
	Addr    string
	servers []*http.Server
	wg      sync.WaitGroup
	log     hclog.Logger
}

// Serve starts the socket and HTTP listeners. Stop them with Shutdown.
func Serve(opts ServeOptions) (*Servers, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	s := &Servers{log: opts.Logger}
	if opts.Socket != "" {
		// The caller holds the state store, so no other agent uses this socket: a file left
		// there is stale.
		if err := os.Remove(opts.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove the stale control socket: %w", err)
		}
		ln, err := net.Listen("unix", opts.Socket)
		if err != nil {
			return nil, fmt.Errorf("control socket %s: %w (a path longer than about 100 bytes does not work: shorten data_dir)", opts.Socket, err)
		}
		if err := os.Chmod(opts.Socket, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket permissions: %w", err)
		}
		s.socket = opts.Socket
		srv := api.New(api.Options{Ops: opts.Ops, Repairs: opts.Repairs, Socket: true, Gatherers: opts.Gatherers, Logger: opts.Logger})
		s.start(&http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}, ln, "", "")
	}
	if opts.HTTP != nil {
		addr := opts.HTTP.Listen
		if opts.Listen != "" {
			addr = opts.Listen
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.Shutdown(context.Background())
			return nil, fmt.Errorf("control panel: listen on %s: %w (change http.listen, or stop what uses the port)", addr, err)
		}
		s.Addr = ln.Addr().String()
		srv := api.New(api.Options{Ops: opts.Ops, Repairs: opts.Repairs, Tokens: opts.HTTP.Tokens, UI: opts.UI, Gatherers: opts.Gatherers,
			SessionTTL: opts.HTTP.SessionTTL, SecureCookies: opts.HTTP.TLSCert != "", Logger: opts.Logger})
		s.start(&http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute},
			ln, opts.HTTP.TLSCert, opts.HTTP.TLSKey)
		scheme := "http"
		if opts.HTTP.TLSCert != "" {
			scheme = "https"
		}
		opts.Logger.Info("control panel listening", "url", scheme+"://"+s.Addr+"/")
	}
	return s, nil
}

func (s *Servers) start(srv *http.Server, ln net.Listener, cert, key string) {
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if cert != "" {
			err = srv.ServeTLS(ln, cert, key)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control server stopped", "error", err)
		}
	}()
}

// Shutdown stops accepting requests, lets those in progress finish until ctx ends, and
// removes the socket.
func (s *Servers) Shutdown(ctx context.Context) {
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
	s.wg.Wait()
	if s.socket != "" {
		_ = os.Remove(s.socket)
	}
}
