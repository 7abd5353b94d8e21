package docker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// recorder is an sdk.Output that keeps what was emitted.
type recorder struct {
	batches [][]sdk.Event
	cps     [][]sdk.Checkpoint
	stored  map[string]string
}

func (r *recorder) Checkpoints() map[string][]byte { return nil }
func (r *recorder) SetStatus(sdk.Status)           {}
func (r *recorder) Emit(_ context.Context, events []sdk.Event, cps ...sdk.Checkpoint) error {
	r.batches = append(r.batches, events)
	r.cps = append(r.cps, cps)
	for _, c := range cps {
		if c.Delete {
			delete(r.stored, c.Key)
		} else {
			r.stored[c.Key] = string(c.Value)
		}
	}
	return nil
}

func TestBatcherNamesLinesAndMovesCheckpointsOnRename(t *testing.T) {
	rec := &recorder{stored: map[string]string{}}
	r := newRun(settings{}, hclog.NewNullLogger(), rec, nil)
	b := newBatcher(r)
	line := func(id, text string, ts int64) item {
		return item{kind: itemLines, id: id, pos: position{ID: id, TS: ts, N: 1},
			events: []sdk.Event{{Kind: sdk.KindLog, Line: []byte(text)}}}
	}
	b.add(item{kind: itemAttach, id: "A", name: "web", pos: position{ID: "A", TS: 5}})
	b.add(line("A", "one", 10))
	b.add(item{kind: itemRename, id: "A", name: "web-old"})
	b.add(line("A", "two", 11))
	b.add(item{kind: itemAttach, id: "B", name: "web", pos: position{ID: "B"}})
	b.add(line("B", "three", 12))
	b.flush(context.Background())

	got := rec.batches[0]
	if len(got) != 3 || got[0].Origin != "web" || got[1].Origin != "web-old" || got[2].Origin != "web" {
		t.Fatalf("origins: %+v", got)
	}
	if !strings.Contains(rec.stored["container/web-old"], `"id":"A","ts":11`) ||
		!strings.Contains(rec.stored["container/web"], `"id":"B","ts":12`) || len(rec.stored) != 2 {
		t.Fatalf("stored checkpoints %v", rec.stored)
	}

	b.add(item{kind: itemForget, id: "A"})
	b.flush(context.Background())
	if _, ok := rec.stored["container/web-old"]; ok || len(rec.batches[1]) != 0 {
		t.Fatalf("forgetting a removed container: stored %v, batch %v", rec.stored, rec.batches[1])
	}

	// A container renamed while tda was away keeps its position under the new name at once.
	b.add(item{kind: itemAttach, id: "C", name: "api", pos: position{ID: "C", TS: 7, N: 2}, persist: true})
	b.flush(context.Background())
	if !strings.Contains(rec.stored["container/api"], `"ts":7,"n":2`) {
		t.Fatalf("persisted attach: %v", rec.stored)
	}
}

func TestHeartbeatListsContainers(t *testing.T) {
	r := newRun(settings{}, hclog.NewNullLogger(), &recorder{}, nil)
	r.connected, r.daemon = true, "connected (Docker 20.10.24, API 1.41)"
	r.watched["1"] = &watch{name: "spring-web-1", state: "exited (code 137)", lines: 10}
	r.watched["2"] = &watch{name: "flask_web_1", state: "running", following: true, lines: 42,
		lastLine: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	hb := newBatcher(r).heartbeat(time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC))
	if hb.Kind != sdk.KindHeartbeat || hb.Field("containers") != "2" ||
		hb.Field("container.flask_web_1") != "running, following" ||
		hb.Field("container.spring-web-1") != "exited (code 137)" {
		t.Fatalf("heartbeat %+v", hb)
	}
	want := "docker daemon connected (Docker 20.10.24, API 1.41); watching 2 containers: " +
		"flask_web_1 running, following, 42 lines, last at 2026-03-01T12:00:00Z; spring-web-1 exited (code 137), 10 lines"
	if string(hb.Line) != want {
		t.Fatalf("heartbeat line\n got %q\nwant %q", hb.Line, want)
	}
	r.connected, r.daemon = false, "unreachable"
	if hb := newBatcher(r).heartbeat(time.Now()); hb.Field("daemon") != "unreachable" ||
		!strings.Contains(string(hb.Line), "unreachable") {
		t.Fatalf("heartbeat while disconnected: %q %v", hb.Line, hb.Fields)
	}
}
