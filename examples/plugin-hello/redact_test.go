package hello_test

import (
	"strings"
	"testing"

	hello "example.com/tda-plugin-hello"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, config, line, want string
	}{
		{"email", ``, "password reset for alice@example.com", "password reset for [redacted]"},
		{"token", ``, `GET /api?token=abc123&x=1 Authorization: Bearer eyJhbGciOi.x`, `GET /api?[redacted]&x=1 Authorization: [redacted]`},
		{"ipv4 off by default", ``, "login from 10.1.2.3", "login from 10.1.2.3"},
		{"ipv4 on", `mask = ["ipv4"]`, "login from 10.1.2.3", "login from [redacted]"},
		{"replacement", "mask = [\"email\"]\nreplacement = \"***\"", "to bob@corp.io", "to ***"},
		{"extra", "mask = []\nextra_pattern = \"card=\\\\d+\"", "card=4111111111111111 ok", "[redacted] ok"},
	}
	for _, tt := range tests {
		for name, mode := range map[string]sdktest.Mode{"grpc": sdktest.GRPC, "direct": sdktest.Direct} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				p := sdktest.NewProcessor(t, hello.Components()[0], tt.config, sdktest.WithMode(mode))
				out := p.Process([]sdk.Event{{Kind: sdk.KindLog, Line: []byte(tt.line),
					Fields: map[string]string{"actor": "alice@example.com"}}})
				if got := string(out[0].Line); got != tt.want {
					t.Fatalf("line %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestRedactConfigErrors(t *testing.T) {
	diags := sdktest.Validate(t, hello.Components()[0], "mask = [\"emails\"]")
	if len(diags) != 1 || !strings.Contains(diags[0], `unknown mask "emails"`) {
		t.Fatalf("diagnostics %v", diags)
	}
	diags = sdktest.Validate(t, hello.Components()[0], "extra_pattern = \"(\"")
	if len(diags) != 1 || !strings.HasPrefix(diags[0], "1:17: Invalid extra_pattern") {
		t.Fatalf("diagnostics %v", diags)
	}
}

func TestStatsCountsThroughTheProtocol(t *testing.T) {
	s := sdktest.NewSink(t, hello.Components()[1], ``)
	for i := 0; i < 3; i++ {
		if err := s.Write(sdk.Event{Kind: sdk.KindLog, Origin: "web"}, sdk.Event{Kind: sdk.KindAlert, Origin: "web"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
