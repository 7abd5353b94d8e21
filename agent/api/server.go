// Package api is the agent's HTTP API and the server of the web panel: system state,
// alerts and acknowledgements, overrides, migrations, snapshots and restores, dead letters,
// and the audit log, over ops.Operations. It authenticates operator and viewer tokens (constant-time),
// keeps browser sessions with CSRF protection, and serves the same API on the agent's unix
// socket, where the file's permissions are the authentication. Client is its Go client.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tda-dev/tda/agent/ops"
)

// Options configure a Server.
type Options struct {
	Ops ops.Operations
	// Repairs plans and applies repairs (nil: the repair routes answer 503).
	Repairs ops.Repairs
	// Tokens are the accepted credentials (ignored with Socket).
	Tokens []Token
	// Socket trusts every request as an operator: the server listens on the agent's unix
	// socket, which only its owner can open. Callers name the person in every mutation.
	Socket bool
	// UI serves the web panel at / (nil: no panel).
	UI http.Handler
	// Gatherers are exposed at /metrics with the API's own metrics.
	Gatherers prometheus.Gatherers
	// SessionTTL bounds a browser session (default 12h).
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure (the listener uses TLS).
	SecureCookies bool
	// FailedLogins is how many wrong tokens (sign-ins or bearer tokens) one client may send
	// before it is refused with 429; one more attempt comes back every FailedLoginRefill.
	// Defaults: DefaultFailedLogins, DefaultFailedLoginRefill.
	FailedLogins      int
	FailedLoginRefill time.Duration
	Logger            hclog.Logger
	Now               func() time.Time
}

// Server serves the API.
type Server struct {
	opts     Options
	sessions *sessions
	fails    *failLimiter
	requests *prometheus.CounterVec
	registry *prometheus.Registry
	mux      *routeMux
	log      hclog.Logger
}

// New builds a server.
func New(opts Options) *Server {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.FailedLogins <= 0 {
		opts.FailedLogins = DefaultFailedLogins
	}
	if opts.FailedLoginRefill <= 0 {
		opts.FailedLoginRefill = DefaultFailedLoginRefill
	}
	s := &Server{opts: opts, sessions: newSessions(opts.SessionTTL, opts.Now), log: opts.Logger,
		registry: prometheus.NewRegistry(),
		fails:    newFailLimiter(opts.FailedLogins, opts.FailedLoginRefill, maxLimitedClients, opts.Now)}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_api_requests_total",
		Help: "API requests by route and status code."}, []string{"route", "code"})
	s.registry.MustRegister(s.requests, newStateCollector(opts.Ops))
	s.routes()
	return s
}

// Handler returns the server's handler.
func (s *Server) Handler() http.Handler { return s.mux }

type handler func(w http.ResponseWriter, r *http.Request, p principal) error

func (s *Server) routes() {
	m := newRouteMux()
	s.mux = m
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.Handle("GET /metrics", s.auth("metrics", false, func(w http.ResponseWriter, r *http.Request, _ principal) error {
		g := append(prometheus.Gatherers{s.registry}, s.opts.Gatherers...)
		// Over the agent's Unix socket the text goes uncompressed: compressing it would only
		// cost CPU and a fresh compressor's memory (about 1 MiB) per scrape.
		promhttp.HandlerFor(g, promhttp.HandlerOpts{DisableCompression: overUnixSocket(r)}).ServeHTTP(w, r)
		return nil
	}))
	m.HandleFunc("POST /api/login", s.login)
	m.HandleFunc("POST /api/logout", s.logout)
	m.Handle("GET /api/session", s.auth("session", false, s.session))

	m.Handle("GET /api/state", s.auth("state", false, s.state))
	m.Handle("GET /api/alerts", s.auth("alerts", false, s.alerts))
	m.Handle("POST /api/alerts/{fingerprint}/ack", s.auth("alerts.ack", true, s.ack))
	m.Handle("GET /api/incidents", s.auth("incidents", false, s.incidents))
	m.Handle("GET /api/incidents/{id}", s.auth("incidents.show", false, s.incident))
	m.Handle("GET /api/incidents/{id}/entities.csv", s.auth("incidents.entities", false, s.incidentEntities(true)))
	m.Handle("GET /api/incidents/{id}/entities.json", s.auth("incidents.entities", false, s.incidentEntities(false)))
	m.Handle("POST /api/incidents/{id}/ack", s.auth("incidents.ack", true, s.actOnIncident(true)))
	m.Handle("POST /api/incidents/{id}/close", s.auth("incidents.close", true, s.actOnIncident(false)))
	m.Handle("GET /api/override", s.auth("override", false, s.override))
	m.Handle("POST /api/override/on", s.auth("override.on", true, s.overrideOn))
	m.Handle("POST /api/override/off", s.auth("override.off", true, s.overrideOff))
	m.Handle("GET /api/migrations", s.auth("migrations", false, s.migrations))
	m.Handle("POST /api/migrations", s.auth("migrations.request", true, s.requestMigration))
	m.Handle("POST /api/migrations/{id}/approve", s.auth("migrations.approve", true, s.decide(true)))
	m.Handle("POST /api/migrations/{id}/reject", s.auth("migrations.reject", true, s.decide(false)))
	m.Handle("POST /api/migrations/begin", s.auth("migrations.begin", true, s.beginMigration))
	m.Handle("POST /api/migrations/{id}/finish", s.auth("migrations.finish", true, s.finishMigration))
	m.Handle("GET /api/snapshots", s.auth("snapshots", false, s.snapshots))
	m.Handle("POST /api/snapshots", s.auth("snapshots.create", true, s.createSnapshot))
	m.Handle("GET /api/incidents/{id}/recovery", s.auth("incidents.recovery", false, s.recovery))
	m.Handle("GET /api/restores", s.auth("restores", false, s.restores))
	m.Handle("POST /api/restores", s.auth("restores.start", true, s.startRestore))
	// A plan shows row values (password hashes): operators only, like a mutation.
	m.Handle("POST /api/repairs/plan", s.auth("repairs.plan", true, s.planRepair))
	m.Handle("POST /api/repairs/apply", s.auth("repairs.apply", true, s.applyRepair))
	m.Handle("GET /api/audit", s.auth("audit", false, s.audit))
	m.Handle("POST /api/audit", s.auth("audit.record", true, s.recordAction))
	m.Handle("GET /api/deadletters", s.auth("deadletters", false, s.deadLetters))
	m.Handle("GET /api/deadletters/{id}", s.auth("deadletters.show", false, s.deadLetter))
	m.Handle("POST /api/deadletters/{id}/replay", s.auth("deadletters.replay", true, s.actOnLetter(true)))
	m.Handle("DELETE /api/deadletters/{id}", s.auth("deadletters.drop", true, s.actOnLetter(false)))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	if s.opts.UI != nil {
		m.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			s.opts.UI.ServeHTTP(w, r)
		}))
	}
}

// statusWriter records the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// auth authenticates a request, checks the role and (for browser sessions) the CSRF token of
// mutations, then runs h and maps its error to a status.
func (s *Server) auth(route string, mutating bool, h handler) http.Handler {
	return authHandler{route: route, mutating: mutating, HandlerFunc: func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		defer func() { s.requests.WithLabelValues(route, strconv.Itoa(w.code)).Inc() }()
		w.Header().Set("Cache-Control", "no-store")
		_, hasToken := bearer(r)
		hasToken = hasToken && !s.opts.Socket
		if hasToken && s.refuseIfLimited(w, r) {
			return
		}
		p, status, msg := s.authenticate(r)
		if hasToken && status == http.StatusUnauthorized && !s.countWrongToken(w, r) {
			return
		}
		if status != 0 {
			kind := "unauthorized"
			if status == http.StatusForbidden {
				kind = "forbidden"
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tda"`)
			}
			writeError(w, status, kind, msg)
			return
		}
		if mutating {
			if p.role != RoleOperator {
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s holds a viewer token: only operators can change anything", p.name))
				return
			}
			if p.session != nil {
				if !sameOrigin(r) {
					writeError(w, http.StatusForbidden, "csrf", "cross-site request refused")
					return
				}
				got := r.Header.Get(CSRFHeader)
				if got == "" || !constantEqual(got, p.session.csrf) {
					writeError(w, http.StatusForbidden, "csrf", "missing or wrong "+CSRFHeader+" header: reload the panel")
					return
				}
			}
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		if err := h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	}}
}

func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// authenticate returns the principal, or a status (401, 403) and a message.
func (s *Server) authenticate(r *http.Request) (principal, int, string) {
	if s.opts.Socket {
		return principal{role: RoleOperator, shared: true, via: "socket"}, 0, ""
	}
	if tok, present := bearer(r); present {
		t, ok := matchToken(s.opts.Tokens, tok)
		if !ok {
			return principal{}, http.StatusUnauthorized, "the token is not valid"
		}
		return principal{name: t.Name, role: t.Role, shared: t.Shared, via: "token " + t.Name}, 0, ""
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		if ss := s.sessions.get(c.Value); ss != nil {
			return principal{name: ss.token.Name, role: ss.token.Role, shared: ss.token.Shared,
				via: "session " + ss.token.Name, session: ss}, 0, ""
		}
		return principal{}, http.StatusUnauthorized, "the session has expired: sign in again"
	}
	return principal{}, http.StatusUnauthorized, "a token is required: send Authorization: Bearer TOKEN, or sign in to the panel"
}

// actor is the person a mutation is recorded under: the token's holder, or for shared tokens
// and the socket the person named in the request.
func actor(p principal, by string) (ops.Actor, error) {
	by = strings.TrimSpace(by)
	if !p.shared {
		if by != "" && ops.NormalizeName(by) != ops.NormalizeName(p.name) {
			return ops.Actor{}, &ops.Error{Kind: ops.KindForbidden,
				Message: fmt.Sprintf("the token belongs to %s, who cannot act as %q", p.name, by)}
		}
		return ops.Actor{Name: p.name, Via: p.via}, nil
	}
	if by == "" {
		return ops.Actor{}, &ops.Error{Kind: ops.KindInvalid, Message: "say who you are: the acting person's name (by) is required"}
	}
	return ops.Actor{Name: by, Via: p.via}, nil
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, ops.KindInvalid,
			fmt.Sprintf("the request body is larger than %d bytes, the limit of %s %s: send less", mbe.Limit, r.Method, r.URL.Path))
		return
	}
	if errors.Is(err, errBadBody) {
		writeError(w, http.StatusBadRequest, ops.KindInvalid, err.Error())
		return
	}
	kind := ops.KindOf(err)
	status := statusOf(kind)
	if status == http.StatusInternalServerError {
		kind = "internal"
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeError(w, status, kind, err.Error())
}

func statusOf(kind string) int {
	switch kind {
	case ops.KindInvalid:
		return http.StatusBadRequest
	case ops.KindForbidden:
		return http.StatusForbidden
	case ops.KindNotFound:
		return http.StatusNotFound
	case ops.KindConflict:
		return http.StatusConflict
	case ops.KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

func writeError(w http.ResponseWriter, status int, kind, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Kind: kind})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// --- sessions ---

type loginRequest struct {
	Token string `json:"token"`
}

// SessionInfo is what the panel learns about its session.
type SessionInfo struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Shared bool   `json:"shared"`
	CSRF   string `json:"csrf,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.opts.Socket {
		writeError(w, http.StatusNotFound, "not_found", "the socket needs no sign-in")
		return
	}
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "csrf", "cross-site request refused")
		return
	}
	if s.refuseIfLimited(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxLoginBodyBytes)
	var req loginRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	t, ok := matchToken(s.opts.Tokens, strings.TrimSpace(req.Token))
	if !ok {
		if !s.countWrongToken(w, r) {
			return
		}
		s.log.Warn("panel sign-in with an unknown token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "unauthorized", "the token is not valid")
		return
	}
	ss := s.sessions.create(t)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: ss.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opts.SecureCookies, MaxAge: int(s.opts.SessionTTL / time.Second)})
	writeJSON(w, http.StatusOK, SessionInfo{Name: t.Name, Role: t.Role, Shared: t.Shared, CSRF: ss.csrf})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if c, err := r.Cookie(SessionCookie); err == nil {
		if ss := s.sessions.get(c.Value); ss != nil {
			if !sameOrigin(r) || !constantEqual(r.Header.Get(CSRFHeader), ss.csrf) {
				writeError(w, http.StatusForbidden, "csrf", "missing or wrong "+CSRFHeader+" header")
				return
			}
			s.sessions.drop(ss.id)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opts.SecureCookies, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
}

func (s *Server) session(w http.ResponseWriter, _ *http.Request, p principal) error {
	info := SessionInfo{Name: p.name, Role: p.role, Shared: p.shared}
	if p.session != nil {
		info.CSRF = p.session.csrf
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// --- read endpoints ---

func (s *Server) state(w http.ResponseWriter, r *http.Request, _ principal) error {
	st, err := s.opts.Ops.State(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func parseTime(q, name string) (time.Time, error) {
	if q == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, q)
	if err != nil {
		return t, &ops.Error{Kind: ops.KindInvalid, Message: fmt.Sprintf("%s must be an RFC 3339 time such as 2026-11-29T22:00:00Z", name)}
	}
	return t, nil
}

func parseLimit(q string) (int, error) {
	if q == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 {
		return 0, &ops.Error{Kind: ops.KindInvalid, Message: "limit must be a positive number"}
	}
	return n, nil
}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	f := ops.AlertFilter{State: q.Get("state"), Severity: q.Get("severity"), Rule: q.Get("rule"),
		Acknowledged: q.Get("acknowledged")}
	var err error
	if f.Since, err = parseTime(q.Get("since"), "since"); err != nil {
		return err
	}
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	list, err := s.opts.Ops.Alerts(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) override(w http.ResponseWriter, r *http.Request, _ principal) error {
	st, err := s.opts.Ops.Override(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) migrations(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	f := ops.MigrationFilter{Status: q.Get("status"), Name: q.Get("name")}
	var err error
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	list, err := s.opts.Ops.Migrations(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) snapshots(w http.ResponseWriter, r *http.Request, _ principal) error {
	list, err := s.opts.Ops.Snapshots(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) restores(w http.ResponseWriter, r *http.Request, _ principal) error {
	list, err := s.opts.Ops.Restores(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	f := ops.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	var err error
	if f.Since, err = parseTime(q.Get("since"), "since"); err != nil {
		return err
	}
	if f.Limit, err = parseLimit(q.Get("limit")); err != nil {
		return err
	}
	list, err := s.opts.Ops.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// --- mutations ---

// Bodies of the mutating endpoints; By names the person for shared tokens and the socket.
type (
	ackBody struct {
		By      string `json:"by"`
		Comment string `json:"comment"`
	}
	recordBody struct {
		By string `json:"by"`
		ops.ActionRecord
	}
	overrideBody struct {
		By     string `json:"by"`
		Reason string `json:"reason"`
		TTL    string `json:"ttl,omitempty"`
	}
	migrationBody struct {
		By     string `json:"by"`
		Name   string `json:"name"`
		Reason string `json:"reason,omitempty"`
	}
	decisionBody struct {
		By       string `json:"by"`
		Reason   string `json:"reason"`
		ValidFor string `json:"valid_for,omitempty"`
	}
	beginBody struct {
		By string `json:"by"`
		ops.BeginMigration
	}
	finishBody struct {
		By       string `json:"by"`
		Snapshot string `json:"snapshot,omitempty"`
		Outcome  string `json:"outcome"`
		ExitCode int    `json:"exit_code"`
		Error    string `json:"error,omitempty"`
	}
	snapshotBody struct {
		By string `json:"by"`
		ops.SnapshotRequest
	}
	restoreBody struct {
		By string `json:"by"`
		ops.RestoreRequest
	}
)

func (s *Server) ack(w http.ResponseWriter, r *http.Request, p principal) error {
	var b ackBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	a, err := s.opts.Ops.Acknowledge(r.Context(), by, ops.AckRequest{Fingerprint: r.PathValue("fingerprint"), Comment: b.Comment})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) recordAction(w http.ResponseWriter, r *http.Request, p principal) error {
	var b recordBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	e, err := s.opts.Ops.RecordAction(r.Context(), by, b.ActionRecord)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) overrideOn(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.setOverride(w, r, p, true)
}

func (s *Server) overrideOff(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.setOverride(w, r, p, false)
}

func (s *Server) setOverride(w http.ResponseWriter, r *http.Request, p principal, on bool) error {
	var b overrideBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	req := ops.OverrideRequest{Reason: b.Reason, TTL: b.TTL}
	var st ops.OverrideStatus
	if on {
		st, err = s.opts.Ops.OverrideOn(r.Context(), by, req)
	} else {
		st, err = s.opts.Ops.OverrideOff(r.Context(), by, req)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) requestMigration(w http.ResponseWriter, r *http.Request, p principal) error {
	var b migrationBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	m, err := s.opts.Ops.RequestMigration(r.Context(), by, ops.MigrationRequest{Name: b.Name, Reason: b.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) decide(approve bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		var b decisionBody
		if err := decode(r, &b); err != nil {
			return err
		}
		by, err := actor(p, b.By)
		if err != nil {
			return err
		}
		m, err := s.opts.Ops.DecideMigration(r.Context(), by, ops.Decision{ID: r.PathValue("id"), Approve: approve,
			Reason: b.Reason, ValidFor: b.ValidFor})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, m)
		return nil
	}
}

func (s *Server) beginMigration(w http.ResponseWriter, r *http.Request, p principal) error {
	var b beginBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	m, err := s.opts.Ops.BeginMigration(r.Context(), by, b.BeginMigration)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) finishMigration(w http.ResponseWriter, r *http.Request, p principal) error {
	var b finishBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	m, err := s.opts.Ops.FinishMigration(r.Context(), by, ops.FinishMigration{ID: r.PathValue("id"),
		Snapshot: b.Snapshot, Outcome: b.Outcome, ExitCode: b.ExitCode, Error: b.Error})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, p principal) error {
	var b snapshotBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	info, err := s.opts.Ops.CreateSnapshot(r.Context(), by, b.SnapshotRequest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Server) startRestore(w http.ResponseWriter, r *http.Request, p principal) error {
	var b restoreBody
	if err := decode(r, &b); err != nil {
		return err
	}
	by, err := actor(p, b.By)
	if err != nil {
		return err
	}
	res, err := s.opts.Ops.StartRestore(r.Context(), by, b.RestoreRequest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, res)
	return nil
}

// stateCollector exposes the system state as metrics at scrape time.
type stateCollector struct {
	ops      ops.Operations
	status   *prometheus.Desc
	blocking *prometheus.Desc
	override *prometheus.Desc
	pending  *prometheus.Desc
}

func newStateCollector(o ops.Operations) *stateCollector {
	return &stateCollector{ops: o,
		status: prometheus.NewDesc("tda_system_status", "1 for the current system status (normal, degraded, acknowledged, override, blocked).",
			[]string{"status"}, nil),
		blocking: prometheus.NewDesc("tda_alerts_blocking", "HIGH incidents nobody acknowledged (firing or resolved since).", nil, nil),
		override: prometheus.NewDesc("tda_override_active", "1 while an override is in force.", nil, nil),
		pending:  prometheus.NewDesc("tda_migrations_pending", "Migration requests awaiting a decision.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.status
	ch <- c.blocking
	ch <- c.override
	ch <- c.pending
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.ops == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.ops.State(ctx)
	if err != nil {
		return
	}
	for _, name := range []string{ops.StatusNormal, ops.StatusDegraded, ops.StatusAcknowledged, ops.StatusOverride, ops.StatusBlocked} {
		v := 0.0
		if st.Status == name {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, v, name)
	}
	ch <- prometheus.MustNewConstMetric(c.blocking, prometheus.GaugeValue, float64(len(st.Blocking)))
	ov := 0.0
	if st.Override != nil {
		ov = 1
	}
	ch <- prometheus.MustNewConstMetric(c.override, prometheus.GaugeValue, ov)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.PendingMigrations))
}

// overUnixSocket reports whether r came in on a Unix socket (the agent's control socket).
func overUnixSocket(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && a.Network() == "unix"
}
