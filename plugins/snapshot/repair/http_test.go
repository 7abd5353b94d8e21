package repair

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// appDouble is the application's restore endpoint: it stores hashed_password as it is, and
// refuses anything else, as docs/recovery.md asks of an app.
func appDouble(t *testing.T, live *DB, failAfter int) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer admin-token" {
			http.Error(w, "admin only", http.StatusForbidden)
			return
		}
		if failAfter > 0 && int(n) > failAfter {
			http.Error(w, "database is locked", http.StatusServiceUnavailable)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		hash, ok := body["hashed_password"].(string)
		if !ok || !strings.HasPrefix(hash, "$2") || body["password_hash"] != nil {
			http.Error(w, "hashed_password (bcrypt) required", http.StatusBadRequest)
			return
		}
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/admin/users/"), "/restore")
		q := "UPDATE users SET password_hash = " + live.Dialect.Placeholder(1) + " WHERE id = " + live.Dialect.Placeholder(2)
		if _, err := live.SQL.Exec(q, hash, id); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestApplyThroughTheAppEndpoint(t *testing.T) {
	b := backends(t)[0]
	f := newFixture(t, b)
	ctx := context.Background()
	scope := incidentScope()
	scope.Keys = scope.Keys[:5] // users 1 to 5: no deleted rows
	scope.Columns = []string{"password_hash"}

	srv, calls := appDouble(t, f.live, 0)
	writer := &HTTPWriter{URLTemplate: srv.URL + "/admin/users/{key}/restore",
		Fields: map[string]string{"password_hash": "hashed_password"},
		Header: http.Header{"Authorization": {"Bearer admin-token"}}}
	if err := writer.Check(); err != nil {
		t.Fatal(err)
	}
	plan, err := MakePlan(ctx, f.src, f.live, scope)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, f.live, plan, ApplyOptions{Writer: writer})
	if err != nil {
		t.Fatal(err)
	}
	if res.Via != "http" || res.Repaired != 4 || res.Verified != 4 || calls.Load() != 4 {
		t.Fatalf("result %+v after %d requests", res, calls.Load())
	}
	for _, id := range []int{1, 2, 4, 5} {
		var hash string
		if err := f.live.SQL.QueryRow("SELECT password_hash FROM users WHERE id = $1", id).Scan(&hash); err != nil || hash != f.hashes[id] {
			t.Errorf("user %d: %q, %v", id, hash, err)
		}
	}
}

func TestApplyThroughTheAppEndpointFailures(t *testing.T) {
	b := backends(t)[0]
	f := newFixture(t, b)
	ctx := context.Background()
	srv, _ := appDouble(t, f.live, 2)
	writer := &HTTPWriter{URLTemplate: srv.URL + "/admin/users/{key}/restore",
		Fields: map[string]string{"password_hash": "hashed_password", "updated_at": "-"},
		Header: http.Header{"Authorization": {"Bearer admin-token"}}}

	// Deleted rows cannot go through the app.
	plan, err := MakePlan(ctx, f.src, f.live, incidentScope())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, f.live, plan, ApplyOptions{Writer: writer}); err == nil || !strings.Contains(err.Error(), "only SQL can do") {
		t.Fatalf("missing rows through http: %v", err)
	}
	// The third request fails: two rows are written, and the error says so.
	scope := incidentScope()
	scope.Keys = scope.Keys[:5]
	scope.Columns = []string{"password_hash", "updated_at"}
	plan, err = MakePlan(ctx, f.src, f.live, scope)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Apply(ctx, f.live, plan, ApplyOptions{Writer: writer})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "2 of 4 rows were written") {
		t.Fatalf("Apply: %v", err)
	}
	for _, bad := range []string{"http://h/users/restore", "ftp://h/{key}", "/{key}"} {
		if err := (&HTTPWriter{URLTemplate: bad}).Check(); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}
