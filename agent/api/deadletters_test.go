package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
)

// memLetters is an in-memory dead-letter store: what the runtime's store does, without the
// runtime.
type memLetters struct {
	mu       sync.Mutex
	letters  map[uint64]deadletter.Letter
	replayed []uint64
}

func newMemLetters(ls ...deadletter.Letter) *memLetters {
	m := &memLetters{letters: map[uint64]deadletter.Letter{}}
	m.add(ls...)
	return m
}

func (m *memLetters) add(ls ...deadletter.Letter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range ls {
		m.letters[l.ID] = l
	}
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

var testLetters = []deadletter.Letter{
	{ID: 3, Instance: "sink.slack.oncall", Pipeline: "detect", Time: time.Now().Add(-time.Hour).UTC(),
		Reason: deadletter.ReasonRefused, Error: "slack: webhook revoked (404 no_service)", Attempts: 1, Events: 1,
		Bytes: 700, Kinds: []string{"alert"}, Preview: []string{"<img src=x onerror=alert(1)> mass_password_reset"}},
	{ID: 4, Instance: "sink.slack.oncall", Pipeline: "detect", Time: time.Now().Add(-time.Minute).UTC(),
		Reason: deadletter.ReasonRefused, Error: "slack: webhook revoked (404 no_service)", Attempts: 1, Events: 1,
		Bytes: 700, Kinds: []string{"alert"}, Preview: []string{"bulk_deletion key=users"}},
}

func TestDeadLetterEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	f.letters.add(testLetters...)

	var list []deadletter.Letter
	r := f.do(t, nil, "GET", "/api/deadletters", viewerToken, "")
	r.decode(t, &list)
	if r.status != 200 || len(list) != 2 || list[0].ID != 3 || list[0].Instance != "sink.slack.oncall" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	// The panel builds its DOM from text: the API still escapes HTML in JSON.
	if strings.Contains(r.body, "<img") {
		t.Fatalf("unescaped HTML in %s", r.body)
	}
	var d ops.DeadLetterDetail
	r = f.do(t, nil, "GET", "/api/deadletters/3", viewerToken, "")
	r.decode(t, &d)
	if r.status != 200 || d.Letter.ID != 3 || len(d.Events) != 1 {
		t.Fatalf("show: %d %s", r.status, r.body)
	}

	// The state counts them per instance.
	var st ops.SystemState
	f.do(t, nil, "GET", "/api/state", viewerToken, "").decode(t, &st)
	if len(st.DeadLetters) != 1 || st.DeadLetters[0] != (ops.DeadLetterCount{Instance: "sink.slack.oncall", Count: 2, Events: 2}) ||
		!strings.Contains(strings.Join(st.Reasons, "\n"), "sink.slack.oncall: 2 dead letters") {
		t.Fatalf("state: %+v", st)
	}

	// Malformed ids are 400 on every route, before the body is read; unknown ids are 404.
	for _, id := range []string{"abc", "-1", "01", "1.5", "18446744073709551616", "%20", "3%2Freplay", "0x3"} {
		for _, e := range []struct{ method, path, body string }{
			{"GET", "/api/deadletters/" + id, ""},
			{"POST", "/api/deadletters/" + id + "/replay", `{"reason":"x"}`},
			{"DELETE", "/api/deadletters/" + id, `not json`},
		} {
			if r := f.do(t, nil, e.method, e.path, aliceToken, e.body); r.status != http.StatusBadRequest || !strings.Contains(r.body, "not a dead letter id") {
				t.Errorf("%s %s: %d %s", e.method, e.path, r.status, r.body)
			}
		}
	}
	for _, e := range []struct{ method, path, body string }{
		{"GET", "/api/deadletters/99", ""},
		{"POST", "/api/deadletters/99/replay", `{"reason":"x"}`},
		{"DELETE", "/api/deadletters/99", `{"reason":"x"}`},
	} {
		if r := f.do(t, nil, e.method, e.path, aliceToken, e.body); r.status != http.StatusNotFound || !strings.Contains(r.body, "no dead letter 99") {
			t.Errorf("%s %s: %d %s", e.method, e.path, r.status, r.body)
		}
	}
	// A reason is required; unknown body fields are refused.
	if r := f.do(t, nil, "POST", "/api/deadletters/3/replay", aliceToken, `{}`); r.status != 400 || !strings.Contains(r.body, "reason is required") {
		t.Fatalf("replay without reason: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "DELETE", "/api/deadletters/3", aliceToken, `{"reason":"x","force":true}`); r.status != 400 {
		t.Fatalf("unknown field: %d %s", r.status, r.body)
	}

	// Replay one, drop the other: both leave the store, and each is in the audit log.
	var l deadletter.Letter
	r = f.do(t, nil, "POST", "/api/deadletters/3/replay", aliceToken, `{"reason":"webhook rotated"}`)
	r.decode(t, &l)
	if r.status != 200 || l.ID != 3 {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "DELETE", "/api/deadletters/4", oncallToken, `{"reason":"duplicate of 3","by":"erin"}`); r.status != 200 {
		t.Fatalf("drop: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/deadletters/3/replay", aliceToken, `{"reason":"again"}`); r.status != 404 {
		t.Fatalf("second replay: %d %s", r.status, r.body)
	}
	if len(f.letters.replayed) != 1 || f.letters.replayed[0] != 3 {
		t.Fatalf("replayed %v", f.letters.replayed)
	}
	f.do(t, nil, "GET", "/api/deadletters", viewerToken, "").decode(t, &list)
	if len(list) != 0 {
		t.Fatalf("left: %+v", list)
	}
	var audit []ops.AuditEntry
	f.do(t, nil, "GET", "/api/audit?action=deadletter", viewerToken, "").decode(t, &audit)
	// Newest first: the refused second replay, the drop, the replay, then the refusals above
	// (no reason: 1; unknown ids: 2; the malformed ids never reached the operations).
	if len(audit) != 6 {
		t.Fatalf("audit: %+v", audit)
	}
	drop, replay := audit[1], audit[2]
	if drop.Action != ops.ActionDeadLetterDrop || drop.Actor != "erin" || drop.Via != "token oncall" || drop.Target != "4" ||
		drop.Reason != "duplicate of 3" || drop.Detail["instance"] != "sink.slack.oncall" || drop.Outcome != "ok" {
		t.Fatalf("drop audit: %+v", drop)
	}
	if replay.Action != ops.ActionDeadLetterReplay || replay.Actor != "alice" || replay.Target != "3" || replay.Reason != "webhook rotated" ||
		replay.Detail["instance"] != "sink.slack.oncall" || replay.Detail["letter_reason"] != "refused" {
		t.Fatalf("replay audit: %+v", replay)
	}
	if audit[0].Outcome != "refused" || audit[0].Target != "3" {
		t.Fatalf("refused replay audit: %+v", audit[0])
	}
	f.do(t, nil, "GET", "/api/state", viewerToken, "").decode(t, &st)
	if len(st.DeadLetters) != 0 {
		t.Fatalf("state after: %+v", st.DeadLetters)
	}
}

// From the panel, a replay or a drop needs the session's CSRF token and the same origin.
func TestDeadLetterActionsNeedCSRF(t *testing.T) {
	f := newFixture(t, nil)
	f.letters.add(testLetters...)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	origin := f.srv.URL
	var info SessionInfo
	f.do(t, browser, "POST", "/api/login", "", `{"token":"`+aliceToken+`"}`, "Origin", origin).decode(t, &info)
	body := `{"reason":"webhook rotated"}`
	for name, hdr := range map[string][]string{
		"no CSRF header":    {"Origin", origin},
		"wrong CSRF header": {"Origin", origin, CSRFHeader, strings.Repeat("0", 64)},
		"cross-site origin": {"Origin", "https://evil.example", CSRFHeader, info.CSRF},
	} {
		for _, e := range []struct{ method, path string }{{"POST", "/api/deadletters/3/replay"}, {"DELETE", "/api/deadletters/4"}} {
			if r := f.do(t, browser, e.method, e.path, "", body, hdr...); r.status != 403 || !strings.Contains(r.body, "csrf") {
				t.Errorf("%s, %s %s: %d %s", name, e.method, e.path, r.status, r.body)
			}
		}
	}
	if l, _ := f.letters.List(context.Background()); len(l) != 2 {
		t.Fatalf("a refused request changed the store: %+v", l)
	}
	if got, _ := f.svc.Audit(context.Background(), ops.AuditFilter{}); len(got) != 0 {
		t.Fatalf("a refused request was acted on: %+v", got)
	}
	if r := f.do(t, browser, "POST", "/api/deadletters/3/replay", "", body, "Origin", origin, CSRFHeader, info.CSRF); r.status != 200 {
		t.Fatalf("replay with CSRF: %d %s", r.status, r.body)
	}
	if r := f.do(t, browser, "DELETE", "/api/deadletters/4", "", body, "Origin", origin, CSRFHeader, info.CSRF); r.status != 200 {
		t.Fatalf("drop with CSRF: %d %s", r.status, r.body)
	}
}

// The Go client reaches the same endpoints and maps their errors back to the operations' kinds.
func TestClientDeadLetters(t *testing.T) {
	f := newFixture(t, nil)
	f.letters.add(testLetters...)
	ctx := context.Background()
	c := NewHTTPClient(f.srv.URL, bobToken)
	list, err := c.DeadLetters(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	d, err := c.DeadLetter(ctx, 4)
	if err != nil || d.Letter.Preview[0] != "bulk_deletion key=users" {
		t.Fatalf("show: %+v %v", d, err)
	}
	if _, err := c.DeadLetter(ctx, 99); ops.KindOf(err) != ops.KindNotFound {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := c.ReplayDeadLetter(ctx, ops.Actor{}, ops.DeadLetterAction{ID: 3}); ops.KindOf(err) != ops.KindInvalid {
		t.Fatalf("no reason: %v", err)
	}
	if l, err := c.DropDeadLetter(ctx, ops.Actor{}, ops.DeadLetterAction{ID: 3, Reason: "test data"}); err != nil || l.ID != 3 {
		t.Fatalf("drop: %+v %v", l, err)
	}
	if _, err := NewHTTPClient(f.srv.URL, viewerToken).ReplayDeadLetter(ctx, ops.Actor{}, ops.DeadLetterAction{ID: 4, Reason: "x"}); ops.KindOf(err) != ops.KindForbidden {
		t.Fatalf("viewer replay: %v", err)
	}
}
