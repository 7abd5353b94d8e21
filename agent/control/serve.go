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
	// MaxConns and MaxConnsPerClient cap the HTTP listener's connections (defaults: the http
	// block's max_connections and max_connections_per_client, else DefaultMaxConns and
	// DefaultMaxConnsPerClient); MaxSocketConns caps the socket's (DefaultMaxSocketConns).
	MaxConns, MaxConnsPerClient, MaxSocketConns int
}

// Caps and timeouts of the listeners. The socket has its own server, listener and cap, so
// whatever the TCP side suffers, the CLI and /healthz on the socket keep answering.
const (
	DefaultMaxConns          = 512
	DefaultMaxConnsPerClient = 64
	DefaultMaxSocketConns    = 64

	// A client has this long to send a request's header, and its body.
	headerTimeout = 10 * time.Second
	readTimeout   = 30 * time.Second
	// writeTimeout bounds a request's handling and answer over TCP (a manual snapshot
	// returns once its recovery point is fixed; a restore runs in the background).
	writeTimeout = 5 * time.Minute
	idleTimeout  = 2 * time.Minute
	maxHeader    = 64 << 10
)

// Servers are the running listeners.
type Servers struct {
	socket string
	// Addr is the HTTP listener's address ("" without one).
	Addr    string
	servers []*http.Server
	wg      sync.WaitGroup
	log     hclog.Logger
	// metrics holds the listeners' connection figures; closed counts the connections closed
	// at a cap, per listener.
	metrics *prometheus.Registry
	closed  *prometheus.CounterVec
}

// Serve starts the socket and HTTP listeners. Stop them with Shutdown.
func Serve(opts ServeOptions) (*Servers, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	s := &Servers{log: opts.Logger, metrics: prometheus.NewRegistry(),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_http_connections_closed_at_cap_total",
			Help: "Connections closed because a listener's connection cap was reached, by listener."}, []string{"listener"})}
	s.metrics.MustRegister(s.closed)
	opts.Gatherers = append(append(prometheus.Gatherers{}, opts.Gatherers...), s.metrics)
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
		limit := orDefault(opts.MaxSocketConns, DefaultMaxSocketConns)
		// The socket's calls (a restore, a migration run's checks) may take long: no
		// write timeout, but the same header, idle and connection bounds.
		s.start(&http.Server{Handler: track(srv.Handler()), ReadHeaderTimeout: headerTimeout,
			IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeader, ConnContext: connContext},
			s.limit(ln, limit, limit, "socket"), "", "")
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
			SessionTTL: opts.HTTP.SessionTTL, SecureCookies: opts.HTTP.TLSCert != "", Logger: opts.Logger,
			FailedLogins: opts.HTTP.MaxWrongTokens})
		maxConns := orDefault(opts.MaxConns, orDefault(opts.HTTP.MaxConnections, DefaultMaxConns))
		perClient := orDefault(opts.MaxConnsPerClient, orDefault(opts.HTTP.MaxConnectionsPerClient, min(DefaultMaxConnsPerClient, maxConns)))
		s.start(&http.Server{Handler: track(srv.Handler()), ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout,
			WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeader, ConnContext: connContext},
			s.limit(ln, maxConns, perClient, "http"),
			opts.HTTP.TLSCert, opts.HTTP.TLSKey)
		scheme := "http"
		if opts.HTTP.TLSCert != "" {
			scheme = "https"
		}
		opts.Logger.Info("control panel listening", "url", scheme+"://"+s.Addr+"/")
	}
	return s, nil
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// limit caps ln's connections and exposes them as tda_http_connections{listener}.
func (s *Servers) limit(ln net.Listener, total, perClient int, listener string) *connLimit {
	l := newConnLimit(ln, total, perClient, s.shed(listener))
	s.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tda_http_connections",
		Help: "Connections a listener holds (socket, http).", ConstLabels: prometheus.Labels{"listener": listener}},
		func() float64 { return float64(l.held()) }))
	return l
}

// shed returns the listener's report of a connection closed at its cap: counted in
// tda_http_connections_closed_at_cap_total, and a warning at most once a minute with how many
// were closed since the last one.
func (s *Servers) shed(listener string) func(client string) {
	var mu sync.Mutex
	var last time.Time
	n := 0
	counter := s.closed.WithLabelValues(listener)
	return func(client string) {
		counter.Inc()
		mu.Lock()
		defer mu.Unlock()
		n++
		if time.Since(last) < time.Minute {
			return
		}
		s.log.Warn("connections closed at the cap: too many slow or idle connections", "listener", listener,
			"closed", n, "latest_client", client)
		last, n = time.Now(), 0
	}
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
