package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
)

func alertState(ev sdk.Event, state string) sdk.Event {
	a := *ev.Alert
	a.State = state
	ev.Alert = &a
	return ev
}

func TestOpenIncidentsFollowTheAlerts(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 40, 0, 0, time.UTC)
	high := alertEvent("HIGH", "fp-high", t0)
	tests := []struct {
		name   string
		events []sdk.Event
		want   string // fingerprint@began, oldest first
	}{
		{"firing opens from the first event", []sdk.Event{high}, "fp-high@10:40"},
		{"suppressed opens too", []sdk.Event{alertState(high, sdk.StateSuppressed)}, "fp-high@10:40"},
		{"resolved closes", []sdk.Event{high, alertState(high, sdk.StateResolved)}, ""},
		{"another severity is not an incident of this target", []sdk.Event{alertEvent("LOW", "fp-low", t0)}, ""},
		{"a reminder does not move the start later", []sdk.Event{high, alertEvent("HIGH", "fp-high", t0.Add(time.Hour))}, "fp-high@10:40"},
		{"an earlier first event does", []sdk.Event{high, alertEvent("HIGH", "fp-high", t0.Add(-time.Hour))}, "fp-high@09:40"},
		{"several, oldest first", []sdk.Event{high, alertEvent("CRITICAL", "fp-crit", t0.Add(-2*time.Hour))}, "fp-crit@08:40 fp-high@10:40"},
		{"ticks and logs are not incidents", []sdk.Event{tickEvent(t0), {Kind: sdk.KindLog, Line: []byte("x")}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			oi := newOpenIncidents(dir)
			if _, err := oi.note(tt.events, []string{"HIGH", "CRITICAL"}); err != nil {
				t.Fatal(err)
			}
			// What a restarted sink, or the CLI, reads back from the file.
			list, err := newOpenIncidents(dir).list()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range list {
				got = append(got, in.Fingerprint+"@"+in.Began.Format("15:04"))
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("open incidents %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestOpenIncidentsEdges(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 40, 0, 0, time.UTC)
	sev := []string{"HIGH"}

	t.Run("bounded, the ones that began first forgotten", func(t *testing.T) {
		oi := newOpenIncidents(t.TempDir())
		var evs []sdk.Event
		for i := 0; i < MaxOpenIncidents+5; i++ {
			evs = append(evs, alertEvent("HIGH", fmt.Sprintf("fp-%04d", i), t0.Add(time.Duration(i)*time.Second)))
		}
		forgotten, err := oi.note(evs, sev)
		if err != nil || forgotten != 5 {
			t.Fatalf("note: forgotten %d, %v", forgotten, err)
		}
		list, _ := oi.list()
		if len(list) != MaxOpenIncidents || list[0].Fingerprint != "fp-0005" {
			t.Fatalf("%d kept, first %s", len(list), list[0].Fingerprint)
		}
	})

	t.Run("a damaged file is an error that says what to do, not an empty list", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, OpenIncidentsFile), []byte(`[{"fingerprint":`), 0o600); err != nil {
			t.Fatal(err)
		}
		oi := newOpenIncidents(dir)
		if _, err := oi.list(); err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "nothing is pruned") {
			t.Fatalf("list = %v", err)
		}
		if _, err := oi.note([]sdk.Event{alertEvent("HIGH", "fp", t0)}, sev); err == nil {
			t.Fatal("note over a damaged file succeeded")
		}
	})

	t.Run("a failed write keeps the pin in memory and writes it with the next batch", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		oi := newOpenIncidents(dir)
		if _, err := oi.list(); err != nil {
			t.Fatal(err)
		}
		// The data directory's place is then taken by a file: no write can succeed, even as
		// root.
		if err := os.WriteFile(dir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := oi.note([]sdk.Event{alertEvent("HIGH", "fp", t0)}, sev); err == nil || !strings.Contains(err.Error(), "record the open incidents") {
			t.Fatalf("note where no file can be written = %v", err)
		}
		if list, err := oi.list(); err != nil || len(list) != 1 {
			t.Fatalf("memory after the failed write: %v %v", list, err)
		}
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := oi.note(nil, sev); err != nil { // the next batch, with no alert
			t.Fatal(err)
		}
		if list, err := newOpenIncidents(dir).list(); err != nil || len(list) != 1 {
			t.Fatalf("file after the retry: %v %v", list, err)
		}
	})
}

// An open incident's recovery snapshot survives the prunes of hourly snapshots (keep_daily
// keeps only the newest of each day) until the incident is resolved; the listing and the
// prune's plan say why; a damaged list of open incidents stops the prune.
func TestPruneKeepsTheSnapshotAnOpenIncidentNeeds(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	// Noon of a fixed day: the five hourly snapshots before it are of one UTC day.
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for h := 5; h >= 1; h-- {
		at := now.Add(-time.Duration(h) * time.Hour)
		srv.AddSnapshot(fmt.Sprintf("sched-%dh", h), "prod-aurora", at, tagsOf(provider.TriggerScheduled, at))
	}
	m := auroraManager(t, srv)
	m.now = func() time.Time { return now }
	manager := func() *Manager {
		x := NewManager(m.Settings(), m.Provider(), nil)
		x.now = m.now
		return x
	}
	ctx := context.Background()
	began := now.Add(-3*time.Hour + 20*time.Minute) // sched-3h is the last snapshot before it
	reset := alertEvent("HIGH", "3f9a1c0e5b7d2a64", began)
	if err := m.NoteAlerts([]sdk.Event{reset}); err != nil {
		t.Fatal(err)
	}
	// The CLI opens its own manager over the same data directory.
	cli := manager()
	dry, err := cli.Prune(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WritePrune(&out, cli, dry)
	if !strings.Contains(out.String(), "pinned by open incident mass_password_reset 3f9a1c0e5b7d2a64") {
		t.Fatalf("the prune's plan does not show the pin:\n%s", out.String())
	}
	l, err := cli.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	WriteListing(&out, l)
	if !strings.Contains(out.String(), "pinned by open incident") {
		t.Fatalf("the listing does not show the pin:\n%s", out.String())
	}
	if _, err := m.Prune(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Snapshot("sched-3h"); !ok {
		t.Fatal("the last snapshot before the open incident was pruned")
	}
	if _, ok := srv.Snapshot("sched-4h"); ok {
		t.Fatal("a snapshot nothing keeps was not pruned")
	}

	if err := os.WriteFile(filepath.Join(m.Settings().DataDir, OpenIncidentsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := manager().Prune(ctx, false); err == nil {
		t.Fatal("a prune with a damaged list of open incidents went ahead")
	}
	l, err = manager().List(ctx)
	if err != nil || len(l.Warnings) == 0 || !strings.Contains(l.Warnings[0], "damaged") {
		t.Fatalf("listing with a damaged list: %v %v", l.Warnings, err)
	}
	if _, ok := srv.Snapshot("sched-3h"); !ok {
		t.Fatal("pruned with a damaged list of open incidents")
	}

	if err := os.Remove(filepath.Join(m.Settings().DataDir, OpenIncidentsFile)); err != nil {
		t.Fatal(err)
	}
	resolved := manager()
	if err := resolved.NoteAlerts([]sdk.Event{reset, alertState(reset, sdk.StateResolved)}); err != nil {
		t.Fatal(err)
	}
	if _, err := resolved.Prune(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Snapshot("sched-3h"); ok {
		t.Fatal("the pin outlived the incident's resolution")
	}
}
