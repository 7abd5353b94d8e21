package nats_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/plugins/nats/natstest"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// The credentials come from env() (so this test does not run in parallel: it sets the
// environment); the right ones publish, wrong ones give an error that
// says the server refused them and what to check, and the edge keeps the events.
func TestCredentials(t *testing.T) {
	c, err := natstest.StartWith(t.TempDir(), 1, func(o *server.Options) {
		o.Users = []*server.User{{Username: "edge", Password: "s3cret-edge"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	tokenCluster, err := natstest.StartWith(t.TempDir(), 1, func(o *server.Options) { o.Authorization = "t0ken-abc" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tokenCluster.Shutdown)
	t.Setenv("TDA_TEST_NATS_PASSWORD", "s3cret-edge")
	t.Setenv("TDA_TEST_NATS_WRONG", "not-the-password")
	t.Setenv("TDA_TEST_NATS_TOKEN", "t0ken-abc")
	tests := []struct {
		name    string
		servers string
		auth    string
		want    string // "" means accepted
	}{
		{"user and password", c.HCLServers(), `user = "edge"` + "\n" + `password = env("TDA_TEST_NATS_PASSWORD")`, ""},
		{"wrong password", c.HCLServers(), `user = "edge"` + "\n" + `password = env("TDA_TEST_NATS_WRONG")`, "NATS refuses the connection"},
		{"no credentials", c.HCLServers(), ``, "NATS refuses the connection"},
		{"token", tokenCluster.HCLServers(), `token = env("TDA_TEST_NATS_TOKEN")`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := sdktest.NewSink(t, nats.SinkComponent(), fmt.Sprintf("servers = %s\nhost = \"web-1\"\nconnect_timeout = \"1s\"\n%s", tt.servers, tt.auth),
				sdktest.WithMode(sdktest.Direct))
			ev := detection("password_changed", "/var/log/app.log", time.Now().UTC(), 1)
			var err error
			// The client connects in the background: give it a moment to succeed or be refused.
			for range 30 {
				if err = sink.Write(ev); err == nil || strings.Contains(err.Error(), "refuses") {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			case tt.want != "" && strings.Contains(err.Error(), "not-the-password"):
				t.Fatalf("the error reveals the password: %v", err)
			}
		})
	}
}
