package aurora

import (
	"context"
	"errors"
	"testing"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// TestInvalidSnapshotIDsNeverReachRDS: Get, Delete and Restore refuse an id outside RDS's
// alphabet before any request, and an automated snapshot's id ("rds:...") still reaches it.
func TestInvalidSnapshotIDsNeverReachRDS(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	p := newTestProvider(t, srv)
	ctx := context.Background()
	before := len(srv.Requests())
	for _, id := range []string{"../../../../x/e", "tda x", "tda\nx", "", "tda/x"} {
		_, getErr := p.Get(ctx, id)
		delErr := p.Delete(ctx, id)
		_, resErr := p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: "drill"})
		for op, err := range map[string]error{"Get": getErr, "Delete": delErr, "Restore": resErr} {
			if !errors.Is(err, provider.ErrInvalid) {
				t.Errorf("%s(%q) = %v, want an invalid-id error", op, id, err)
			}
		}
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Fatalf("%d requests reached RDS: %v", n, srv.Actions()[before:])
	}
	if _, err := p.Get(ctx, "rds:prod-aurora-2026-11-29-03-05"); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("an automated snapshot's id: %v", err)
	}
}
