package ops

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/state"
)

// memLetters is an in-memory dead-letter store: what the runtime's store does, without the
// runtime. Replay records the letters it put back; failWith makes Replay and Drop fail.
type memLetters struct {
	mu       sync.Mutex
	letters  map[uint64]deadletter.Letter
	events   map[uint64][]json.RawMessage
	replayed []uint64
	failWith error
}

func newMemLetters(ls ...deadletter.Letter) *memLetters {
	m := &memLetters{letters: map[uint64]deadletter.Letter{}, events: map[uint64][]json.RawMessage{}}
	for _, l := range ls {
		m.letters[l.ID] = l
		for i := 0; i < l.Events; i++ {
			m.events[l.ID] = append(m.events[l.ID], json.RawMessage(`{"kind":"alert","rule":"r"}`))
		}
	}
	return m
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
	return l, m.events[id], nil
}

func (m *memLetters) remove(id uint64, replay bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.letters[id]; !ok {
		return deadletter.ErrNotFound
	}
	if m.failWith != nil {
		return m.failWith
	}
	delete(m.letters, id)
	if replay {
		m.replayed = append(m.replayed, id)
	}
	return nil
}

func (m *memLetters) Replay(_ context.Context, id uint64) error { return m.remove(id, true) }
func (m *memLetters) Drop(_ context.Context, id uint64) error   { return m.remove(id, false) }

var (
	slackRefused = deadletter.Letter{ID: 3, Instance: "sink.slack.oncall", Pipeline: "detect",
		Time: time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC), Reason: deadletter.ReasonRefused,
		Error: "slack: webhook revoked (404 no_service)", Attempts: 1, Events: 2, Bytes: 900, Kinds: []string{"alert"}}
	slackRefused2 = deadletter.Letter{ID: 4, Instance: "sink.slack.oncall", Pipeline: "detect",
		Time: time.Date(2026, 11, 29, 21, 5, 0, 0, time.UTC), Reason: deadletter.ReasonRefused,
		Error: "slack: webhook revoked (404 no_service)", Attempts: 1, Events: 1, Bytes: 400, Kinds: []string{"alert"}}
	rulesCrash = deadletter.Letter{ID: 7, Instance: "processor.rules.anomalies", Pipeline: "detect",
		Time: time.Date(2026, 11, 29, 21, 30, 0, 0, time.UTC), Reason: deadletter.ReasonCrashBudget,
		Error: "plugin exited: panic: index out of range", Attempts: 3, Events: 500, Bytes: 64000, Kinds: []string{"log"}}
)

func newLetterFixture(t *testing.T, letters deadletter.Letters, health ...ComponentHealth) (*Service, *fakeAgent) {
	t.Helper()
	store, err := state.Open(filepath.Join(t.TempDir(), "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	agent := &fakeAgent{pipelines: map[string][]string{"detect": {"processor.rules.anomalies"}}, health: health}
	clk := &clock{t: time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)}
	svc, err := NewService(Options{Store: store, Agent: agent, DeadLetters: letters, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	agent.svc = svc
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc, agent
}

func TestDeadLetterReplayAndDropAreAudited(t *testing.T) {
	ctx := context.Background()
	letters := newMemLetters(slackRefused, slackRefused2, rulesCrash)
	svc, _ := newLetterFixture(t, letters)

	list := must(svc.DeadLetters(ctx))(t)
	if len(list) != 3 || list[0].ID != 3 || list[2].Instance != "processor.rules.anomalies" {
		t.Fatalf("list: %+v", list)
	}
	d := must(svc.DeadLetter(ctx, 7))(t)
	if d.Letter.Attempts != 3 || len(d.Events) != 500 {
		t.Fatalf("show: %+v, %d events", d.Letter, len(d.Events))
	}
	_, err := svc.DeadLetter(ctx, 99)
	wantKind(t, err, KindNotFound)

	cases := []struct {
		name    string
		by      Actor
		req     DeadLetterAction
		drop    bool
		kind    string // "" for success
		outcome string // "" when nothing is audited
	}{
		{"no actor", Actor{}, DeadLetterAction{ID: 3, Reason: "webhook rotated"}, false, KindInvalid, ""},
		{"no reason", alice, DeadLetterAction{ID: 3, Reason: "  "}, false, KindInvalid, "refused"},
		{"unknown id", alice, DeadLetterAction{ID: 99, Reason: "x"}, false, KindNotFound, "refused"},
		{"replay", alice, DeadLetterAction{ID: 3, Reason: "webhook rotated"}, false, "", "ok"},
		{"replay again", alice, DeadLetterAction{ID: 3, Reason: "webhook rotated"}, false, KindNotFound, "refused"},
		{"drop", bob, DeadLetterAction{ID: 7, Reason: "poison batch, reported upstream"}, true, "", "ok"},
	}
	for _, c := range cases {
		before := must(svc.Audit(ctx, AuditFilter{Action: "deadletter"}))(t)
		var l deadletter.Letter
		if c.drop {
			l, err = svc.DropDeadLetter(ctx, c.by, c.req)
		} else {
			l, err = svc.ReplayDeadLetter(ctx, c.by, c.req)
		}
		if c.kind != "" {
			wantKind(t, err, c.kind)
		} else if err != nil || l.ID != c.req.ID {
			t.Fatalf("%s: %+v %v", c.name, l, err)
		}
		after := must(svc.Audit(ctx, AuditFilter{Action: "deadletter"}))(t)
		if c.outcome == "" {
			if len(after) != len(before) {
				t.Fatalf("%s: audited %+v", c.name, after[0])
			}
			continue
		}
		if len(after) != len(before)+1 {
			t.Fatalf("%s: not audited", c.name)
		}
		e := after[0]
		wantAction := ActionDeadLetterReplay
		if c.drop {
			wantAction = ActionDeadLetterDrop
		}
		if e.Action != wantAction || e.Actor != c.by.Name || e.Outcome != c.outcome || e.Target != itoa(c.req.ID) ||
			e.Reason != strings.TrimSpace(c.req.Reason) {
			t.Fatalf("%s: audit entry %+v", c.name, e)
		}
		if c.outcome == "ok" {
			want := map[string]string{"instance": l.Instance, "pipeline": "detect", "letter_reason": string(l.Reason), "events": itoa(uint64(l.Events))}
			for k, v := range want {
				if e.Detail[k] != v {
					t.Fatalf("%s: detail %s = %q, want %q", c.name, k, e.Detail[k], v)
				}
			}
		}
	}
	if len(letters.replayed) != 1 || letters.replayed[0] != 3 {
		t.Fatalf("replayed: %v", letters.replayed)
	}
	if left := must(svc.DeadLetters(ctx))(t); len(left) != 1 || left[0].ID != 4 {
		t.Fatalf("left: %+v", left)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A store that fails to replay (the queue is full, the disk is) is audited as failed and the
// letter stays.
func TestDeadLetterReplayFailureIsAuditedAndKeepsTheLetter(t *testing.T) {
	ctx := context.Background()
	letters := newMemLetters(slackRefused)
	letters.failWith = errors.New("the queue of sink.slack.oncall is full: try again later")
	svc, _ := newLetterFixture(t, letters)
	_, err := svc.ReplayDeadLetter(ctx, alice, DeadLetterAction{ID: 3, Reason: "webhook rotated"})
	if err == nil || KindOf(err) != "" || !strings.Contains(err.Error(), "queue") {
		t.Fatalf("replay: %v", err)
	}
	e := must(svc.Audit(ctx, AuditFilter{Action: ActionDeadLetterReplay}))(t)
	if len(e) != 1 || e[0].Outcome != "failed" || !strings.Contains(e[0].Error, "queue") {
		t.Fatalf("audit: %+v", e)
	}
	if l := must(svc.DeadLetters(ctx))(t); len(l) != 1 {
		t.Fatalf("letter lost: %+v", l)
	}
}

func TestDeadLettersWithoutAStore(t *testing.T) {
	ctx := context.Background()
	svc, _ := newLetterFixture(t, nil)
	_, err := svc.DeadLetters(ctx)
	wantKind(t, err, KindUnavailable)
	_, err = svc.DeadLetter(ctx, 1)
	wantKind(t, err, KindUnavailable)
	_, err = svc.DropDeadLetter(ctx, alice, DeadLetterAction{ID: 1, Reason: "x"})
	wantKind(t, err, KindUnavailable)
	st := must(svc.State(ctx))(t)
	if st.Status != StatusNormal || st.DeadLetters == nil || len(st.DeadLetters) != 0 {
		t.Fatalf("state: %+v", st)
	}
}

func TestStateCountsDeadLettersPerInstance(t *testing.T) {
	ctx := context.Background()
	letters := newMemLetters(slackRefused, slackRefused2, rulesCrash)
	// The runtime already calls the rules processor unhealthy because of its dead letter; the
	// slack sink's health does not mention them.
	svc, _ := newLetterFixture(t, letters,
		ComponentHealth{Address: "sink.slack.oncall", Healthy: true},
		ComponentHealth{Address: "processor.rules.anomalies", Healthy: false, Reason: "1 batch dead-lettered: crash budget spent (dead letter 7)"})
	st := must(svc.State(ctx))(t)
	if st.Status != StatusDegraded {
		t.Fatalf("status %s", st.Status)
	}
	want := []DeadLetterCount{{Instance: "processor.rules.anomalies", Count: 1, Events: 500}, {Instance: "sink.slack.oncall", Count: 2, Events: 3}}
	if len(st.DeadLetters) != 2 || st.DeadLetters[0] != want[0] || st.DeadLetters[1] != want[1] {
		t.Fatalf("counts: %+v", st.DeadLetters)
	}
	for _, c := range st.Components {
		if (c.Address == "sink.slack.oncall" && c.DeadLetters != 2) || (c.Address == "processor.rules.anomalies" && c.DeadLetters != 1) {
			t.Fatalf("component %+v", c)
		}
	}
	if len(st.Degraded) != 2 {
		t.Fatalf("degraded: %q", st.Degraded)
	}
	if !strings.HasPrefix(st.Degraded[1], "sink.slack.oncall: 2 dead letters (3 events)") || !strings.Contains(st.Degraded[1], "tda deadletter replay") {
		t.Fatalf("reason: %q", st.Degraded[1])
	}
	// Once replayed, the state is normal again.
	for _, id := range []uint64{3, 4, 7} {
		must(svc.ReplayDeadLetter(ctx, alice, DeadLetterAction{ID: id, Reason: "fixed"}))(t)
	}
	svc2, _ := newLetterFixture(t, letters, ComponentHealth{Address: "sink.slack.oncall", Healthy: true})
	if st := must(svc2.State(ctx))(t); st.Status != StatusNormal || len(st.DeadLetters) != 0 {
		t.Fatalf("after replay: %+v", st)
	}
}

func TestParseDeadLetterID(t *testing.T) {
	for in, want := range map[string]uint64{"1": 1, "0": 0, "12": 12, "18446744073709551615": 1<<64 - 1} {
		got, err := ParseDeadLetterID(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v", in, got, err)
		}
	}
	for _, in := range []string{"", " 1", "1 ", "+1", "-1", "01", "00", "1e3", "0x1f", "1.0", "18446744073709551616",
		"99999999999999999999", "123456789012345678901", "１", "1/replay", "%31"} {
		if _, err := ParseDeadLetterID(in); KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "not a dead letter id") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// FuzzParseDeadLetterID: an id from a URL or the command line is accepted only in its one
// canonical form, which names the same number when printed again.
func FuzzParseDeadLetterID(f *testing.F) {
	for _, s := range []string{"1", "0", "007", "18446744073709551615", "18446744073709551616", "-1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseDeadLetterID(s)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("%q: error of kind %q", s, KindOf(err))
			}
			return
		}
		if itoa(n) != s {
			t.Fatalf("%q accepted as %d", s, n)
		}
	})
}
