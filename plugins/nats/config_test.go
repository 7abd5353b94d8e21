package nats_test

import (
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// Every mistake in a nats block is a diagnostic that says what to write instead.
func TestConfigDiagnostics(t *testing.T) {
	const ok = `servers = ["nats://127.0.0.1:4222"]` + "\n"
	tests := []struct {
		name string
		comp sdk.Component
		src  string
		want string // "" means valid
	}{
		{"sink minimal", nats.SinkComponent(), ok + `host = "web-1"`, ""},
		{"source minimal", nats.SourceComponent(), ok + `member = "d1"`, ""},
		{"servers missing", nats.SinkComponent(), `host = "web-1"`, "servers"},
		{"server without scheme", nats.SinkComponent(), `servers = ["127.0.0.1:4222"]`, "needs a scheme"},
		{"bad stream name", nats.SinkComponent(), ok + `stream = "a.b"`, "not a stream name"},
		{"wildcard subject", nats.SinkComponent(), ok + `subject = "tda.>"`, "not a subject prefix"},
		{"no partitions", nats.SinkComponent(), ok + `partitions = 0`, "between 1 and 1024"},
		{"too many replicas", nats.SinkComponent(), ok + `replicas = 7`, "between 1 and 5"},
		{"cert without key", nats.SinkComponent(), ok + `tls_cert = "c.pem"`, "tls_cert and tls_key go together"},
		{"two auth methods", nats.SinkComponent(), ok + `token = "t"` + "\n" + `user = "u"`, "choose one of"},
		{"password without user", nats.SinkComponent(), ok + `password = "p"`, "password needs user"},
		{"dup window over max age", nats.SinkComponent(), ok + `max_age = "1m"` + "\n" + `duplicate_window = "2m"`, "no longer than max_age"},
		{"empty partition_by", nats.SinkComponent(), ok + `partition_by = { login_failed = " , " }`, "name at least one field"},
		{"bad member", nats.SourceComponent(), ok + `member = "d 1"`, "not a member name"},
		{"short lease", nats.SourceComponent(), ok + `member = "d1"` + "\n" + `lease_ttl = "100ms"`, "at least 1s"},
		{"replay past max age", nats.SourceComponent(), ok + `member = "d1"` + "\n" + `takeover_replay = "48h"`, "shorter than max_age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := sdktest.Validate(t, tt.comp, tt.src)
			got := strings.Join(diags, "\n")
			if tt.want == "" {
				if len(diags) != 0 {
					t.Fatalf("valid config reported %s", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", got, tt.want)
			}
		})
	}
}

// The secrets never show in the spec as anything but sensitive.
func TestSecretsAreSensitive(t *testing.T) {
	for _, comp := range nats.Components() {
		for _, name := range []string{"password", "token", "tls_key"} {
			f, ok := comp.Spec.FieldByName(name)
			if !ok || !f.Sensitive {
				t.Fatalf("%s %s: %s is not a sensitive field", comp.Kind, comp.Name, name)
			}
		}
	}
}
