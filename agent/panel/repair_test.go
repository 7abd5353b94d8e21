package panel

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRepairPageIsServed: the repair page and its script are served with the panel's
// security headers, and the script only ever sets values as text.
func TestRepairPageIsServed(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/repair.html": `<script src="repair.js" defer></script>`,
		"/repair.js":   "api/repairs/apply",
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d, want %q in\n%s", path, resp.StatusCode, want, b)
		}
		if resp.Header.Get("Content-Security-Policy") != contentSecurityPolicy {
			t.Errorf("%s: no content security policy", path)
		}
		if path == "/repair.js" && strings.Contains(string(b), "innerHTML") {
			t.Errorf("repair.js writes HTML")
		}
	}
}
