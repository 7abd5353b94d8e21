package panel

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// dispatch is one workflow dispatch the GitHub double received.
type dispatch struct {
	Path          string
	Authorization string
	APIVersion    string
	Body          struct {
		Ref              string            `json:"ref"`
		Inputs           map[string]string `json:"inputs"`
		ReturnRunDetails bool              `json:"return_run_details"`
	}
}

// githubDouble answers like api.github.com does for workflow dispatches: CORS for any origin,
// 401 without a token, 200 with the run's details when return_run_details is set.
func githubDouble(t *testing.T) (*httptest.Server, chan dispatch) {
	got := make(chan dispatch, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since, Accept-Encoding, X-GitHub-OTP, X-Requested-With, User-Agent, GraphQL-Features, X-GitHub-Api-Version")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/dispatches") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found"}`)
			return
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Requires authentication"}`)
			return
		}
		d := dispatch{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), APIVersion: r.Header.Get("X-GitHub-Api-Version")}
		if err := json.NewDecoder(r.Body).Decode(&d.Body); err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"message":"Problems parsing JSON"}`)
			return
		}
		got <- d
		if !d.Body.ReturnRunDetails {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"workflow_run_id":4242,"run_url":"https://api.github.com/repos/acme/shop/actions/runs/4242","html_url":"https://github.com/acme/shop/actions/runs/4242"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// site exports the panel, publishes data from a store with a pending migration and an open
// alert, and serves it like GitHub Pages.
func site(t *testing.T, api string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "site")
	if err := Export(out, GitHubConfig{API: api, Owner: "acme", Repo: "shop", Ref: "production"}); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	trail := filepath.Join(dir, "alerts.jsonl")
	now := time.Now().UTC()
	ev := sdk.Event{Time: now, Kind: sdk.KindAlert, Alert: &sdk.Alert{Rule: "bulk_deletion", Severity: "HIGH", State: "firing",
		Key: "203.0.113.9", Count: 14, Threshold: 10, Window: time.Minute, FirstSeen: now.Add(-time.Minute), LastSeen: now,
		Fingerprint: "fp1", Excerpt: []string{"user_deleted user_id=9 actor=mallory"}, Explanation: "Many accounts deleted."}}
	line, _ := ev.MarshalJSON()
	if err := os.WriteFile(trail, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := ops.NewService(ops.Options{Store: store, Trail: ops.NewTrail(trail)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	if _, err := svc.RequestMigration(context.Background(), ops.Actor{Name: "alice"}, ops.MigrationRequest{Name: "V7__orders_index", Reason: "secret plan"}); err != nil {
		t.Fatal(err)
	}
	if err := Publish(context.Background(), svc, filepath.Join(out, "data")); err != nil {
		t.Fatal(err)
	}
	// A snapshot listing as the snapshot workflow publishes it.
	snaps := []ops.SnapshotTarget{{Name: "guard", Kind: "aurora", Target: "prod-aurora", Tiers: []ops.SnapshotTier{
		{Name: "scheduled", Newest: now.Add(-3 * time.Hour), RPOSeconds: 10800, RPO: "3h", Snapshots: []ops.SnapshotInfo{
			{ID: "prod-aurora-scheduled-20261129t0300", Time: now.Add(-3 * time.Hour), Status: "available", Trigger: "scheduled", Keep: true}}}}}}
	b, _ := json.Marshal(snaps)
	if err := os.WriteFile(filepath.Join(out, "data", "snapshots.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	pages := httptest.NewServer(http.FileServer(http.Dir(out)))
	t.Cleanup(pages.Close)
	return pages.URL
}

func TestPublishLeavesOutWhatIsPrivate(t *testing.T) {
	url := site(t, "https://api.github.com")
	for _, name := range []string{"alerts.json", "migrations.json", "state.json"} {
		resp, err := http.Get(url + "/data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, secret := range []string{"203.0.113.9", "mallory", "secret plan"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s publishes %q: %s", name, secret, b)
			}
		}
	}
}

func TestExportWritesAStandaloneSite(t *testing.T) {
	dir := t.TempDir()
	if err := Export(dir, GitHubConfig{API: "https://ghe.example.com/api/v3", Owner: "acme", Repo: "shop", Ref: "production"}); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	for _, want := range []string{`data-mode="github"`, `connect-src 'self' https://ghe.example.com`, `script-src 'self'`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	for _, bad := range []string{"http://", "https://"} {
		js, _ := os.ReadFile(filepath.Join(dir, "app.css"))
		if strings.Contains(string(js), bad) {
			t.Errorf("app.css loads an external asset")
		}
	}
	var cfg GitHubConfig
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Workflows["migration"] != "approve-migration.yml" || cfg.Data != "data/" {
		t.Fatalf("config.json: %s %v", b, err)
	}
	for _, bad := range []GitHubConfig{{API: "ftp://x", Owner: "a", Repo: "b", Ref: "p"}, {API: "https://api.github.com", Owner: "a/b", Repo: "c", Ref: "p"},
		{API: "https://api.github.com", Owner: "a", Repo: "b"}} {
		if err := Export(t.TempDir(), bad); err == nil {
			t.Errorf("export accepted %+v", bad)
		}
	}
}

func TestStaticPanelDispatchesWorkflows(t *testing.T) {
	ctx := browser(t)
	gh, got := githubDouble(t)
	url := site(t, gh.URL)
	const token = "github_pat_11AAAAAAA0example"

	do(t, ctx, "sign in with a token",
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), token),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css(`.migration[data-id="1"] button.approve`)),
	)
	stored := get(t, ctx, "session storage", chromedp.Evaluate[string](`sessionStorage.getItem("tda.github.token") || ""`))
	persisted := get(t, ctx, "local storage", chromedp.Evaluate[string](`localStorage.length + ":" + document.cookie`))
	if stored != token || persisted != "0:" {
		t.Fatalf("token kept in sessionStorage only: session %q, local/cookies %q", stored, persisted)
	}
	banner := get(t, ctx, "banner", chromedp.TextContent(css("#status-word")))
	alert := get(t, ctx, "alert", chromedp.Text(css(".alert-card .explanation")))
	if banner != "blocked" || alert != "bulk_deletion: 14 in 1m (threshold 10)" {
		t.Fatalf("banner %q, alert %q", banner, alert)
	}
	screenshot(t, ctx, "panel-github.png")

	// Approve the pending migration: a dispatch of approve-migration.yml on production.
	do(t, ctx, "approve",
		chromedp.Click(css(`.migration[data-id="1"] button.approve`)),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "reviewed in PR 88"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css(`#notice a[href="https://github.com/acme/shop/actions/runs/4242"]`)),
	)
	d := next(t, got)
	if d.Path != "/repos/acme/shop/actions/workflows/approve-migration.yml/dispatches" ||
		d.Authorization != "Bearer "+token || d.APIVersion == "" || d.Body.Ref != "production" || !d.Body.ReturnRunDetails {
		t.Fatalf("dispatch: %+v", d)
	}
	if want := map[string]string{"id": "1", "decision": "approve", "reason": "reviewed in PR 88"}; !equal(d.Body.Inputs, want) {
		t.Fatalf("inputs: %v, want %v", d.Body.Inputs, want)
	}

	// A restore is only dispatched once the cluster's name is typed.
	do(t, ctx, "open the restore dialog",
		chromedp.Click(css(`.target[data-target="guard"] button.restore-button`)),
		chromedp.WaitVisible(css("#confirm-type")),
		chromedp.SendKeys(css("#confirm-reason"), "restore drill"),
		chromedp.SendKeys(css("#confirm-type"), "prod-auror"),
	)
	if !get(t, ctx, "confirm button", chromedp.JavascriptAttribute[bool](css("#confirm-ok"), "disabled")) {
		t.Fatal("restore could be confirmed without the exact cluster name")
	}
	do(t, ctx, "restore",
		chromedp.SendKeys(css("#confirm-type"), "a"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css(`#notice a`)),
	)
	d = next(t, got)
	if d.Path != "/repos/acme/shop/actions/workflows/restore.yml/dispatches" || d.Body.Ref != "production" ||
		!equal(d.Body.Inputs, map[string]string{"target": "guard", "snapshot": "prod-aurora-scheduled-20261129t0300",
			"new_name": "prod-aurora-restored", "confirm": "prod-aurora", "reason": "restore drill"}) {
		t.Fatalf("restore dispatch: %+v", d)
	}
}

func next(t *testing.T, got chan dispatch) dispatch {
	t.Helper()
	select {
	case d := <-got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no dispatch reached the GitHub double")
	}
	return dispatch{}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
