package control

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/sdk"
)

type noPipelines struct{}

func (noPipelines) Pipelines() map[string][]string                    { return nil }
func (noPipelines) Inject(context.Context, string, []sdk.Event) error { return nil }
func (noPipelines) Components() []ops.ComponentHealth                 { return nil }

// TestSnapshotsThroughTheSnapshotPackage drives the panel's snapshot operations against the
// RDS double: tiers with their RPO, a manual snapshot, and a restore with its RPO and RTO.
func TestSnapshotsThroughTheSnapshotPackage(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	srv.AddSnapshot("tda-prod-aurora-scheduled-old", "prod-aurora", time.Now().Add(-26*time.Hour),
		map[string]string{"created_by": "tda", "trigger": "scheduled"})
	cfg, _ := loadWithPlugins(t, `
agent { data_dir = "DATA" }
plugin "snapshot" {
  inherit_env = ["AWS_*"]
}
sink "snapshot" "guard" {
  poll_interval = "2ms"
  aurora {
    cluster  = "prod-aurora"
    region   = "eu-west-1"
    endpoint = "`+srv.URL+`"
  }
}
`)
	setup, diags := Prepare(cfg, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	defer setup.Close(context.Background())
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := NewService(setup, store, noPipelines{}, nil, "socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	ctx := context.Background()

	targets, err := svc.Snapshots(ctx)
	if err != nil || len(targets) != 1 {
		t.Fatalf("targets: %+v %v", targets, err)
	}
	tg := targets[0]
	if tg.Name != "guard" || tg.Kind != "aurora" || tg.Target != "prod-aurora" || tg.Error != "" {
		t.Fatalf("target: %+v", tg)
	}
	tiers := map[string]ops.SnapshotTier{}
	for _, tier := range tg.Tiers {
		tiers[tier.Name] = tier
	}
	if pit := tiers["point-in-time"]; pit.Newest.IsZero() || pit.RPO == "" {
		t.Fatalf("point-in-time tier: %+v", pit)
	}
	if sch := tiers["scheduled"]; len(sch.Snapshots) != 1 || sch.RPOSeconds < 26*3600-60 || sch.Snapshots[0].Trigger != "scheduled" {
		t.Fatalf("scheduled tier: %+v", sch)
	}

	info, err := svc.CreateSnapshot(ctx, ops.Actor{Name: "alice"}, ops.SnapshotRequest{Reason: "before the release"})
	if err != nil || !strings.Contains(info.ID, "manual") || info.Trigger != "manual" {
		t.Fatalf("create: %+v %v", info, err)
	}
	r, err := svc.StartRestore(ctx, ops.Actor{Name: "alice"}, ops.RestoreRequest{SnapshotID: "tda-prod-aurora-scheduled-old",
		NewName: "prod-drill", Confirm: "prod-aurora", Reason: "monthly drill"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := svc.Restores(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if list[0].ID == r.ID && list[0].Status != ops.RestoreRunning {
			if list[0].Status != ops.RestoreSucceeded || list[0].RPOSeconds < 26*3600-60 || list[0].RTOSeconds <= 0 {
				t.Fatalf("restore: %+v", list[0])
			}
			// Where to connect, from the restored cluster, without a secret; then what to do.
			if c := list[0].Connection; c == nil || c.String() != "host prod-drill.cluster-abc123.eu-west-1.rds.amazonaws.com, port 5432, cluster prod-drill, database app, user app_admin" ||
				len(list[0].NextSteps) != 2 {
				t.Fatalf("restore result: %+v %+v", list[0].Connection, list[0].NextSteps)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore still running: %+v", list[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := srv.Instance("prod-drill-instance-1"); !ok {
		t.Fatal("the restored cluster got no instance")
	}
	targets, _ = svc.Snapshots(ctx)
	if lr := targets[0].LastRestore; lr == nil || lr.NewName != "prod-drill" || lr.By != "alice" {
		t.Fatalf("last restore drill: %+v", lr)
	}
}
