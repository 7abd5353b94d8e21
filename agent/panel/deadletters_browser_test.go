package panel

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tda-dev/tda/agent/api"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// memLetters is an in-memory dead-letter store: what the runtime's store does, without the
// runtime.
type memLetters struct {
	mu       sync.Mutex
	letters  map[uint64]deadletter.Letter
	replayed []uint64
}

func (m *memLetters) List(context.Context) ([]deadletter.Letter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []deadletter.Letter
	for _, l := range m.letters {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memLetters) Show(_ context.Context, id uint64) (deadletter.Letter, []json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[id]
	if !ok {
		return l, nil, deadletter.ErrNotFound
	}
	var events []json.RawMessage
	for _, p := range l.Preview {
		b, _ := json.Marshal(map[string]string{"kind": "alert", "line": p})
		events = append(events, b)
	}
	return l, events, nil
}

func (m *memLetters) remove(id uint64, replay bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.letters[id]; !ok {
		return deadletter.ErrNotFound
	}
	delete(m.letters, id)
	if replay {
		m.replayed = append(m.replayed, id)
	}
	return nil
}

func (m *memLetters) Replay(_ context.Context, id uint64) error { return m.remove(id, true) }
func (m *memLetters) Drop(_ context.Context, id uint64) error   { return m.remove(id, false) }

// press clicks the button sel selects inside the page, in one step: the panel re-renders
// every few seconds, and a node looked up first and clicked after may be gone by then.
func press(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`(() => { const b = document.querySelector(` + strconv.Quote(sel) + `); if (!b) return false; b.click(); return true; })()`)
}

// TestPanelDeadLetters works the dead-letter view in Chromium against the API server and the
// operations service the agent runs, with an in-memory dead-letter store: list, open a
// letter's events (markup in them stays text), replay one and drop the other after
// confirming, and find both in the audit log.
func TestPanelDeadLetters(t *testing.T) {
	ctx := browser(t)
	store, err := state.Open(filepath.Join(t.TempDir(), "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now().UTC()
	letters := &memLetters{letters: map[uint64]deadletter.Letter{
		3: {ID: 3, Instance: "sink.slack.oncall", Pipeline: "detect", Time: now.Add(-3 * time.Hour), Reason: deadletter.ReasonRefused,
			Error: "slack: the webhook answered 404 no_service: create a new incoming webhook", Attempts: 1, Events: 2,
			Kinds: []string{"alert"}, Preview: []string{"HIGH mass_password_reset", "<img src=x onerror=document.title='pwned'>"}},
		4: {ID: 4, Instance: "processor.rules.anomalies", Pipeline: "detect", Time: now.Add(-time.Minute), Reason: deadletter.ReasonCrashBudget,
			Error: "plugin exited 3 times on this batch", Attempts: 3, Events: 1, Kinds: []string{"log"}, Preview: []string{"password_changed"}},
	}}
	svc, err := ops.NewService(ops.Options{Store: store, DeadLetters: letters})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	srv := httptest.NewServer(api.New(api.Options{Ops: svc, UI: Handler(),
		Tokens: []api.Token{{Name: "alice", Role: api.RoleOperator, Secret: aliceToken}}}).Handler())
	t.Cleanup(srv.Close)

	do(t, ctx, "sign in",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), aliceToken),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css(`#deadletters tr.deadletter[data-id="3"] button.replay-letter`)),
	)
	row := get(t, ctx, "row", chromedp.TextContent(css(`tr.deadletter[data-id="3"]`)))
	for _, want := range []string{"sink.slack.oncall (detect)", "refused", "404 no_service", "3h ago"} {
		if !strings.Contains(row, want) {
			t.Errorf("row lacks %q: %q", want, row)
		}
	}
	if r := get(t, ctx, "reasons", chromedp.TextContent(css("#reasons"))); !strings.Contains(r, "sink.slack.oncall: 1 dead letter (2 events)") {
		t.Errorf("banner reasons: %q", r)
	}

	do(t, ctx, "open the events",
		press(`tr.deadletter[data-id="3"] button.show-letter`),
		chromedp.WaitVisible(css(`tr.deadletter-events[data-id="3"] pre`)),
	)
	events := get(t, ctx, "events", chromedp.TextContent(css(`tr.deadletter-events[data-id="3"] pre`)))
	if !strings.Contains(events, "mass_password_reset") || !strings.Contains(events, "<img src=x") {
		t.Fatalf("events: %q", events)
	}
	if n := get(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll("#deadletters img").length`)); n != 0 {
		t.Fatalf("event markup became %d elements", n)
	}

	do(t, ctx, "replay",
		press(`tr.deadletter[data-id="3"] button.replay-letter`),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "webhook rotated"),
		chromedp.Click(css("#confirm-ok")),
	)
	do(t, ctx, "the list after the replay", chromedp.WaitNotPresent(css(`tr.deadletter[data-id="3"]`)))
	// Cancelling a drop changes nothing; confirming it drops the letter.
	do(t, ctx, "cancel a drop",
		press(`tr.deadletter[data-id="4"] button.drop-letter`),
		chromedp.WaitVisible(css("#confirm-cancel")),
		chromedp.Click(css("#confirm-cancel")),
		chromedp.WaitNotVisible(css("#confirm")),
	)
	if l, _ := letters.List(context.Background()); len(l) != 1 {
		t.Fatalf("a cancelled drop removed a letter: %+v", l)
	}
	do(t, ctx, "drop",
		press(`tr.deadletter[data-id="4"] button.drop-letter`),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "poison batch, reported upstream"),
		chromedp.Click(css("#confirm-ok")),
	)
	do(t, ctx, "the list after the drop", chromedp.WaitVisible(css(`#deadletter-list p.empty`)))
	do(t, ctx, "the drop in the audit log", chromedp.WaitVisible(css(`#audit tr.audit-entry[data-action="deadletter.drop"]`)))
	if len(letters.replayed) != 1 || letters.replayed[0] != 3 {
		t.Fatalf("replayed: %v", letters.replayed)
	}
	audit := get(t, ctx, "audit", chromedp.TextContent(css("#audit-list")))
	for _, want := range []string{"deadletter.replay", "webhook rotated", "deadletter.drop", "poison batch, reported upstream", "alice (session alice)"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q:\n%s", want, audit)
		}
	}
	if title := get(t, ctx, "title", chromedp.Evaluate[string](`document.title`)); title != "tda control panel" {
		t.Fatalf("title %q: event markup ran", title)
	}
}
