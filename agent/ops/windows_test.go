package ops

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/state"
)

// TestBeginMigrationAsksTheWindows: the windows are asked each time a migration begins;
// while they cannot be learned the migration is refused (not let through as if there were
// none) and stays approved, and once they can it begins.
func TestBeginMigrationAsksTheWindows(t *testing.T) {
	ctx := context.Background()
	store, err := state.Open(filepath.Join(t.TempDir(), "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	base := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	clk := &clock{t: base}
	var asked int
	var failure error
	source := func(ctx context.Context) ([]Window, error) {
		asked++
		if failure != nil {
			return nil, failure
		}
		return []Window{window{from: base.Add(-time.Hour), to: base.Add(time.Hour)}}, nil
	}
	svc, err := NewService(Options{Store: store, Now: clk.Now, Windows: source})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(ctx) })
	req := must(svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V2"}))(t)
	must(svc.DecideMigration(ctx, bob, Decision{ID: req.ID, Approve: true, Reason: "ok"}))(t)

	failure = errors.New("processor.rules.anomalies: the plugin did not start")
	_, err = svc.BeginMigration(ctx, alice, BeginMigration{ID: req.ID})
	wantKind(t, err, KindUnavailable)
	if !strings.Contains(err.Error(), "the plugin did not start") || !strings.Contains(err.Error(), "not begun") {
		t.Fatalf("error: %v", err)
	}
	list := must(svc.Migrations(ctx, MigrationFilter{Status: MigrationApproved}))(t)
	if len(list) != 1 || len(list[0].Runs) != 0 {
		t.Fatalf("after the refusal: %+v", list)
	}

	failure = nil
	m := must(svc.BeginMigration(ctx, alice, BeginMigration{ID: req.ID}))(t)
	if m.Status != MigrationRunning {
		t.Fatalf("inside the window: %+v", m)
	}
	if asked != 2 {
		t.Errorf("the windows were asked %d times for two beginnings", asked)
	}
}
