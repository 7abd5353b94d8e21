package api

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// Metrics are compressed for a scraper over TCP that asks for it, never over a Unix socket
// (the agent's control socket), where compressing costs CPU and memory and saves nothing.
func TestMetricsCompressedOverTCPOnly(t *testing.T) {
	f := newFixture(t, nil)
	sock := filepath.Join(t.TempDir(), "tda.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.srv.Config.Handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	unixClient := &http.Client{Transport: &http.Transport{DisableCompression: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	tcpClient := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tt := range []struct {
		name   string
		client *http.Client
		base   string
		want   string
	}{
		{"tcp", tcpClient, f.srv.URL, "gzip"},
		{"unix socket", unixClient, "http://tda", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", tt.base+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+viewerToken)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Encoding"); got != tt.want {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.want)
			}
		})
	}
}
