package nats

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tda-dev/tda/sdk"
)

// connFields are the settings of the connection to NATS, shared by the sink and the source.
func connFields() []sdk.Field {
	return []sdk.Field{
		{Name: "servers", Type: sdk.TypeStringList, Required: true,
			Description: "NATS server URLs (nats:// or tls://), e.g. [\"nats://nats-1:4222\", \"nats://nats-2:4222\"]. The client fails over between them and learns the rest of the cluster."},
		{Name: "stream", Type: sdk.TypeString, Default: "TDA_EVENTS",
			Description: "The JetStream stream that holds the detection events."},
		{Name: "subject", Type: sdk.TypeString, Default: "tda.events",
			Description: "Subject prefix: partition N is published on <subject>.N. The stream captures <subject>.>."},
		{Name: "partitions", Type: sdk.TypeInt, Default: 8,
			Description: "How many subject partitions the events are spread over by their key. Edges and detectors must agree; more partitions than detectors lets the work move in small pieces."},
		{Name: "create_stream", Type: sdk.TypeBool, Default: true,
			Description: "Create the stream when it does not exist (an existing stream is used as it is). Detectors create their lease and position buckets in any case."},
		{Name: "replicas", Type: sdk.TypeInt, Default: 1,
			Description: "Replicas of the stream and bucket when tda creates them: 3 on a three-node cluster survives the loss of one node."},
		{Name: "max_age", Type: sdk.TypeDuration, Default: "24h",
			Description: "How long the stream keeps events when tda creates it. It bounds how long a detector can be away and still catch up, and must exceed takeover_replay."},
		{Name: "duplicate_window", Type: sdk.TypeDuration, Default: "10m",
			Description: "The stream's de-duplication window when tda creates it: an event published again within it (a retry, a republish after a crash) is stored once."},
		{Name: "connect_timeout", Type: sdk.TypeDuration, Default: "5s",
			Description: "How long one connection attempt and one publish acknowledgement may take."},
		{Name: "name", Type: sdk.TypeString,
			Description: "The client name NATS shows in its monitoring; default tda-<host>."},
		{Name: "tls_ca", Type: sdk.TypeString,
			Description: "PEM file of the CA that signed the servers' certificates (enables TLS)."},
		{Name: "tls_cert", Type: sdk.TypeString,
			Description: "PEM client certificate for mutual TLS (with tls_key)."},
		{Name: "tls_key", Type: sdk.TypeString, Sensitive: true,
			Description: "PEM private key of tls_cert."},
		{Name: "creds_file", Type: sdk.TypeString,
			Description: "A .creds file (user JWT and nkey seed) for decentralised auth."},
		{Name: "nkey_seed_file", Type: sdk.TypeString,
			Description: "A file holding an nkey user seed (SU...) for nkey auth."},
		{Name: "user", Type: sdk.TypeString,
			Description: "User name for user/password auth."},
		{Name: "password", Type: sdk.TypeString, Sensitive: true,
			Description: "Password for user; use env(\"NATS_PASSWORD\") or file()."},
		{Name: "token", Type: sdk.TypeString, Sensitive: true,
			Description: "Token auth; use env(\"NATS_TOKEN\")."},
	}
}

// connConfig is the decoded connection and stream settings.
type connConfig struct {
	servers    []string
	stream     string
	subject    string
	partitions int
	create     bool
	replicas   int
	maxAge     time.Duration
	dupWindow  time.Duration
	timeout    time.Duration
	name       string
	tlsCA      string
	tlsCert    string
	tlsKey     string
	credsFile  string
	nkeySeed   string
	user       string
	password   string
	token      string
}

// maxPartitions bounds partitions: each is a lease and, on a detector, a consumer.
const maxPartitions = 1024

func parseConnConfig(c *sdk.Config) (connConfig, error) {
	cc := connConfig{
		servers: c.StringList("servers"), stream: c.String("stream"), subject: c.String("subject"),
		partitions: int(c.Int("partitions")), create: c.Bool("create_stream"), replicas: int(c.Int("replicas")),
		maxAge: c.Duration("max_age"), dupWindow: c.Duration("duplicate_window"), timeout: c.Duration("connect_timeout"),
		name: c.String("name"), tlsCA: c.String("tls_ca"), tlsCert: c.String("tls_cert"), tlsKey: c.String("tls_key"),
		credsFile: c.String("creds_file"), nkeySeed: c.String("nkey_seed_file"), user: c.String("user"),
		password: c.String("password"), token: c.String("token"),
	}
	if len(cc.servers) == 0 {
		return cc, c.Errorf("servers", "name at least one server, e.g. servers = [\"nats://127.0.0.1:4222\"]")
	}
	for i, s := range cc.servers {
		if !strings.Contains(s, "://") {
			return cc, c.Errorf("servers", "server %d (%q) needs a scheme: nats://host:4222 or tls://host:4222", i+1, s)
		}
	}
	if !validToken(cc.stream) {
		return cc, c.Errorf("stream", "%q is not a stream name: letters, digits, - and _ only", cc.stream)
	}
	if cc.subject == "" || strings.ContainsAny(cc.subject, " \t*>") || strings.HasPrefix(cc.subject, ".") || strings.HasSuffix(cc.subject, ".") {
		return cc, c.Errorf("subject", "%q is not a subject prefix: dot-separated tokens without wildcards, e.g. \"tda.events\"", cc.subject)
	}
	if cc.partitions < 1 || cc.partitions > maxPartitions {
		return cc, c.Errorf("partitions", "partitions must be between 1 and %d", maxPartitions)
	}
	if cc.replicas < 1 || cc.replicas > 5 {
		return cc, c.Errorf("replicas", "replicas must be between 1 and 5 (JetStream's limit)")
	}
	if cc.timeout <= 0 {
		return cc, c.Errorf("connect_timeout", "connect_timeout must be longer than 0s")
	}
	if cc.dupWindow <= 0 || cc.maxAge < cc.dupWindow {
		return cc, c.Errorf("duplicate_window", "duplicate_window must be longer than 0s and no longer than max_age (%s)", sdk.FormatDuration(cc.maxAge))
	}
	if (cc.tlsCert == "") != (cc.tlsKey == "") {
		return cc, c.Errorf("tls_cert", "tls_cert and tls_key go together")
	}
	auths := 0
	for _, set := range []bool{cc.credsFile != "", cc.nkeySeed != "", cc.user != "", cc.token != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		return cc, c.Errorf("creds_file", "choose one of creds_file, nkey_seed_file, user/password and token")
	}
	if cc.password != "" && cc.user == "" {
		return cc, c.Errorf("password", "password needs user")
	}
	if err := checkCredentialFiles(c, cc, time.Now()); err != nil {
		return cc, err
	}
	if cc.name == "" {
		h, _ := os.Hostname()
		cc.name = "tda-" + h
	}
	return cc, nil
}

// validToken reports whether s is a non-empty name of letters, digits, '-' and '_'.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// options returns the client options. The connection retries for ever in the background
// (RetryOnFailedConnect, MaxReconnects(-1)) so that a plugin starts while NATS is away, and
// keeps no reconnect buffer: a publish while disconnected fails at once, and the agent's
// sink buffer (spill to disk) holds the events instead of the client's memory.
func (cc connConfig) options(extra ...nats.Option) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(cc.name),
		nats.Timeout(cc.timeout),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
	}
	if cc.tlsCA != "" {
		opts = append(opts, nats.RootCAs(cc.tlsCA))
	}
	if cc.tlsCert != "" {
		opts = append(opts, nats.ClientCert(cc.tlsCert, cc.tlsKey))
	}
	switch {
	case cc.credsFile != "":
		opts = append(opts, nats.UserCredentials(cc.credsFile))
	case cc.nkeySeed != "":
		o, err := nats.NkeyOptionFromSeed(cc.nkeySeed)
		if err != nil {
			return nil, fmt.Errorf("nkey_seed_file %s: %w", cc.nkeySeed, err)
		}
		opts = append(opts, o)
	case cc.user != "":
		opts = append(opts, nats.UserInfo(cc.user, cc.password))
	case cc.token != "":
		opts = append(opts, nats.Token(cc.token))
	}
	return append(opts, extra...), nil
}

// connect opens the connection; it returns before the first server answers (the client keeps
// trying), so a caller checks nc.IsConnected.
func (cc connConfig) connect(extra ...nats.Option) (*nats.Conn, error) {
	opts, err := cc.options(extra...)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(cc.servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(cc.servers, ","), err)
	}
	return nc, nil
}

// atomicError holds the last error of a connection's callbacks.
type atomicError struct {
	mu  sync.Mutex
	err error
}

func (a *atomicError) set(err error) {
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func (a *atomicError) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// connProblem says why a connection is down and what to check, from its status and its last
// error (nil: none known); meanwhile says what tda does ("events wait in the sink's buffer").
func connProblem(status nats.Status, lastErr error, meanwhile string) string {
	switch {
	case lastErr != nil && isAuthError(lastErr):
		return fmt.Sprintf("NATS refuses the connection (%v): %s; check user/password, token, nkey_seed_file or creds_file (and that the user may use the stream)", lastErr, meanwhile)
	case lastErr != nil && isTLSError(lastErr):
		return fmt.Sprintf("TLS with NATS fails (%v): %s; check tls_ca (the CA that signed the servers' certificates), tls_cert and tls_key (the client certificate the servers require)", lastErr, meanwhile)
	case lastErr != nil:
		return fmt.Sprintf("NATS is unreachable (%s, %v): %s; check that the servers are up and reachable", status, lastErr, meanwhile)
	}
	return fmt.Sprintf("NATS is unreachable (%s): %s; check that the servers are up and reachable", status, meanwhile)
}

// isAuthError reports whether err is the server refusing the credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// isTLSError reports whether err is a failed TLS handshake or certificate check.
func isTLSError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") || strings.Contains(msg, "tls error")
}
