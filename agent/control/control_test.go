package control

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

const pipelineHCL = `
agent { data_dir = "DATA" }
source "file" "app" { paths = ["/tmp/x.log"] }
processor "rules" "anomalies" {
  rule "migration_outside_window" {
    match     = "migration_started"
    threshold = 0
    window    = "10m"
    maintenance_window {
      days     = ["sun"]
      start    = "02:00"
      end      = "04:00"
      timezone = "Europe/Paris"
    }
  }
}
sink "jsonl" "audit" { path = "ALERTS" }
sink "jsonl" "archive" { path = "/tmp/archive.jsonl" }
pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
pipeline "keep" {
  from = [source.file.app]
  to   = [sink.jsonl.archive]
}
`

func load(t *testing.T, src string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	src = strings.ReplaceAll(src, "DATA", filepath.Join(dir, "data"))
	src = strings.ReplaceAll(src, "ALERTS", filepath.Join(dir, "alerts.jsonl"))
	cfg, diags := config.LoadBytes("test.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return cfg, dir
}

func TestParseHTTP(t *testing.T) {
	t.Setenv("TDA_TEST_TOKEN", "from-the-environment-0123")
	tests := []struct {
		name   string
		block  string
		errors []string
		check  func(t *testing.T, s *HTTPSettings)
	}{
		{name: "defaults and tokens", block: `http {
  operator "alice" { token = env("TDA_TEST_TOKEN") }
  viewer "wall" { token = "viewer-token-0123456789" }
  operator "oncall" {
    token  = "shared-token-0123456789"
    shared = true
  }
}`, check: func(t *testing.T, s *HTTPSettings) {
			if s.Listen != DefaultListen || s.ApprovalValidity != 24*time.Hour || len(s.Tokens) != 3 {
				t.Fatalf("settings: %+v", s)
			}
			if s.Tokens[0].Secret != "from-the-environment-0123" || s.Tokens[0].Role != "operator" || s.Tokens[1].Role != "viewer" || !s.Tokens[2].Shared {
				t.Fatalf("tokens: %+v", s.Tokens)
			}
		}},
		{name: "no token", block: `http {}`, errors: []string{"needs at least one operator or viewer"}},
		{name: "unset environment variable", block: `http {
  operator "alice" { token = env("TDA_TEST_UNSET", "") }
}`, errors: []string{"is empty", "openssl rand"}},
		{name: "short token", block: `http {
  operator "alice" { token = "short" }
}`, errors: []string{"has 5 characters"}},
		{name: "same token twice", block: `http {
  operator "alice" { token = "same-token-0123456789" }
  viewer "bob" { token = "same-token-0123456789" }
}`, errors: []string{"same token"}},
		{name: "same name twice", block: `http {
  operator "alice" { token = "token-one-0123456789" }
  viewer "alice" { token = "token-two-0123456789" }
}`, errors: []string{"already named"}},
		{name: "bad listen", block: `http {
  listen = "8470"
  operator "alice" { token = "token-one-0123456789" }
}`, errors: []string{"HOST:PORT"}},
		{name: "audit trail must be jsonl", block: `http {
  audit_trail = source.file.app
  operator "alice" { token = "token-one-0123456789" }
}`, errors: []string{"sink reference"}},
		{name: "half TLS", block: `http {
  tls_cert = "cert.pem"
  operator "alice" { token = "token-one-0123456789" }
}`, errors: []string{"both tls_cert and tls_key"}},
		{name: "connection and token limits", block: `http {
  max_connections            = 100
  max_connections_per_client = 100
  max_wrong_tokens           = 3
  operator "alice" { token = "token-one-0123456789" }
}`, check: func(t *testing.T, s *HTTPSettings) {
			if s.MaxConnections != 100 || s.MaxConnectionsPerClient != 100 || s.MaxWrongTokens != 3 {
				t.Fatalf("settings: %+v", s)
			}
		}},
		{name: "limits out of range", block: `http {
  max_connections  = 0
  max_wrong_tokens = -1
  operator "alice" { token = "token-one-0123456789" }
}`, errors: []string{"max_connections must be a whole number from 1 to 65536", "max_wrong_tokens must be a whole number from 1 to 10000"}},
		{name: "per client over the total", block: `http {
  max_connections            = 10
  max_connections_per_client = 20
  operator "alice" { token = "token-one-0123456789" }
}`, errors: []string{"is more than max_connections (10)"}},
		{name: "audit trail and durations", block: `http {
  listen            = "127.0.0.1:0"
  audit_trail       = sink.jsonl.archive
  approval_validity = "4h"
  session_ttl       = "1h"
  operator "alice" { token = "token-one-0123456789" }
}`, check: func(t *testing.T, s *HTTPSettings) {
			if s.AuditTrail == nil || s.AuditTrail.Name != "archive" || s.ApprovalValidity != 4*time.Hour || s.SessionTTL != time.Hour {
				t.Fatalf("settings: %+v", s)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := load(t, pipelineHCL+tc.block)
			s, diags := ParseHTTP(cfg)
			if len(tc.errors) == 0 {
				if diags.HasErrors() {
					t.Fatalf("unexpected: %v", diags)
				}
				tc.check(t, s)
				return
			}
			if !diags.HasErrors() {
				t.Fatalf("want errors %v, got none", tc.errors)
			}
			all := diagText(diags)
			for _, want := range tc.errors {
				if !strings.Contains(all, want) {
					t.Errorf("diagnostics lack %q: %s", want, all)
				}
			}
		})
	}
}

func diagText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(d.Summary + ": " + d.Detail + "\n")
		if d.Subject == nil {
			b.WriteString("(no position)\n")
		}
	}
	return b.String()
}

func TestPublicListenWithoutTLSWarns(t *testing.T) {
	cfg, _ := load(t, pipelineHCL+`http {
  listen = "0.0.0.0:8470"
  operator "alice" { token = "token-one-0123456789" }
}`)
	_, diags := ParseHTTP(cfg)
	if diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Subject == nil {
		t.Fatalf("diagnostics: %v", diags)
	}
}

func TestPrepareFindsTrailAndWindows(t *testing.T) {
	ctx := context.Background()
	cfg, dir := loadWithPlugins(t, pipelineHCL)
	setup, diags := Prepare(cfg, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if setup.TrailPath != filepath.Join(dir, "alerts.jsonl") {
		t.Fatalf("trail: %q (the detection pipeline's jsonl sink)", setup.TrailPath)
	}
	// The rules processor's plugin reports the window of the rule that counts migrations.
	windows, err := setup.Windows(ctx)
	if err != nil || len(windows) != 1 {
		t.Fatalf("windows: %v, %v", windows, err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	w := windows[0]
	if !w.Contains(time.Date(2026, 11, 29, 2, 30, 0, 0, paris)) || w.Contains(time.Date(2026, 11, 29, 3, 30, 0, 0, time.UTC)) ||
		w.Describe() != "Sun 02:00-04:00 Europe/Paris" {
		t.Fatalf("window %s", w.Describe())
	}

	// Two jsonl sinks behind rules processors: the http block must choose.
	two := strings.Replace(pipelineHCL, `pipeline "keep" {
  from = [source.file.app]`, `processor "rules" "more" {
  rule "bulk_deletion" {
    match     = "rows_deleted"
    threshold = 100
    window    = "60s"
  }
}
pipeline "keep" {
  from = [source.file.app]
  through = [processor.rules.more]`, 1)
	cfg, _ = loadWithPlugins(t, two)
	if _, diags := Prepare(cfg, nil); !diags.HasErrors() || !strings.Contains(diagText(diags), "audit_trail = sink.jsonl") {
		t.Fatalf("ambiguous trail: %v", diags)
	}

	// A sink whose plugin declares no audit trail file cannot be the trail.
	cfg, _ = loadWithPlugins(t, pipelineHCL+`sink "console" "screen" {}
http {
  listen      = "127.0.0.1:0"
  audit_trail = sink.console.screen
  operator "alice" { token = "token-one-0123456789" }
}`)
	if _, diags := Prepare(cfg, nil); !diags.HasErrors() || !strings.Contains(diagText(diags), "declares no audit trail file") {
		t.Fatalf("console sink as the trail: %v", diags)
	}
}

// TestWindowsNeedThePlugins: a config read without its plugins has no audit trail, and its
// maintenance windows are unknown: a migration is refused rather than let through.
func TestWindowsNeedThePlugins(t *testing.T) {
	cfg, _ := load(t, pipelineHCL)
	setup, diags := Prepare(cfg, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if setup.TrailPath != "" {
		t.Errorf("trail %q without the plugins", setup.TrailPath)
	}
	if _, err := setup.Windows(context.Background()); err == nil || !strings.Contains(err.Error(), "without its plugins") {
		t.Fatalf("windows: %v", err)
	}
}

func TestConnChoosesAgentOrStore(t *testing.T) {
	cfg, _ := load(t, pipelineHCL)
	setup, diags := Prepare(cfg, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := context.Background()
	conn := Connect(cfg, setup, ConnectOptions{})

	// No agent: the store is opened for each call, and released after it.
	m, err := conn.RequestMigration(ctx, ops.Actor{Name: "alice"}, ops.MigrationRequest{Name: "V1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conn.Where(ctx), "state store") {
		t.Fatalf("where: %s", conn.Where(ctx))
	}
	st, err := conn.State(ctx)
	if err != nil || st.Agent || st.PendingMigrations != 1 {
		t.Fatalf("offline state: %+v %v", st, err)
	}
	if _, err := conn.OverrideOn(ctx, ops.Actor{Name: "alice"}, ops.OverrideRequest{Reason: "x", TTL: "5m"}); ops.KindOf(err) != ops.KindUnavailable {
		t.Fatalf("offline override: %v", err)
	}

	// An agent holds the store and serves the socket: calls go there.
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := NewService(setup, store, nil, nil, "socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	srv, err := Serve(ServeOptions{Ops: svc, Socket: SocketPath(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(cfg))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(conn.Where(ctx), "running agent") {
		t.Fatalf("where: %s", conn.Where(ctx))
	}
	// The socket trusts its caller as an operator but needs the person's name.
	if _, err := conn.DecideMigration(ctx, ops.Actor{}, ops.Decision{ID: m.ID, Approve: true, Reason: "ok"}); ops.KindOf(err) != ops.KindInvalid {
		t.Fatalf("no name: %v", err)
	}
	if _, err := conn.DecideMigration(ctx, ops.Actor{Name: "alice"}, ops.Decision{ID: m.ID, Approve: true, Reason: "ok"}); ops.KindOf(err) != ops.KindForbidden {
		t.Fatalf("self approval over the socket: %v", err)
	}
	got, err := conn.DecideMigration(ctx, ops.Actor{Name: "bob"}, ops.Decision{ID: m.ID, Approve: true, Reason: "ok"})
	if err != nil || got.Status != ops.MigrationApproved {
		t.Fatalf("approval: %+v %v", got, err)
	}
	audit, err := conn.Audit(ctx, ops.AuditFilter{Action: "migration.approve", Limit: 1})
	if err != nil || audit[0].Via != "socket" || audit[0].Actor != "bob" {
		t.Fatalf("audit: %+v %v", audit, err)
	}
	// A stale socket file does not stop the next agent.
	shutdown, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	if _, err := os.Stat(SocketPath(cfg)); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	if err := os.WriteFile(SocketPath(cfg), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err = Serve(ServeOptions{Ops: svc, Socket: SocketPath(cfg)})
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	srv.Shutdown(shutdown)
}
