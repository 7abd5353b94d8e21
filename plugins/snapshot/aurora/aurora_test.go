package aurora

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// newTestProvider points the real SDK at the double with static credentials and waiter delays
// of milliseconds.
func newTestProvider(t *testing.T, srv *rdstest.Server, mod ...func(*Config)) *Provider {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := Config{Cluster: "prod-aurora", Region: "eu-west-1", Endpoint: srv.URL, PollInterval: 2 * time.Millisecond,
		SnapshotTimeout: 5 * time.Second, RestoreTimeout: 5 * time.Second, MaxAttempts: 1}
	for _, m := range mod {
		m(&cfg)
	}
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tdaTags(trigger string) map[string]string {
	return map[string]string{provider.TagCreatedAt: "2026-11-29T22:57:05Z", provider.TagTrigger: trigger,
		provider.TagCreatedBy: provider.CreatedByTDA, provider.TagAppVersion: "1.4.2",
		provider.TagAlertFingerprint: "3f9a0c1d"}
}

func TestCreateTagsAndWait(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	p := newTestProvider(t, srv)
	ctx := context.Background()
	id := "tda-prod-aurora-anomaly-20261129t225705z-3f9a0c1d"

	s, err := p.Create(ctx, provider.CreateRequest{ID: id, Tags: tdaTags(provider.TriggerAnomaly)})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != id || s.Status != provider.StatusCreating || s.Trigger() != provider.TriggerAnomaly || !s.Managed() || s.Time.IsZero() {
		t.Fatalf("created %+v", s)
	}
	req := srv.Requests()[0]
	if req.Action != "CreateDBClusterSnapshot" || req.Params.Get("DBClusterIdentifier") != "prod-aurora" ||
		req.Params.Get("DBClusterSnapshotIdentifier") != id || req.Params.Get("Version") != rdstest.APIVersion {
		t.Fatalf("request %v", req.Params)
	}
	for k, v := range tdaTags(provider.TriggerAnomaly) {
		if got, ok := req.Tag(k); !ok || got != v {
			t.Errorf("tag %s = %q, want %q", k, got, v)
		}
	}

	s, err = p.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != provider.StatusAvailable || s.Tags[provider.TagAlertFingerprint] != "3f9a0c1d" {
		t.Fatalf("after wait %+v", s)
	}
	polls := 0
	for _, a := range srv.Actions() {
		if a == "DescribeDBClusterSnapshots" {
			polls++
		}
	}
	if polls < 3 {
		t.Fatalf("the waiter polled %d times; the double keeps a snapshot creating for 2 polls", polls)
	}
}

func TestWaiterFailureAndTimeout(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	ctx := context.Background()

	p := newTestProvider(t, srv)
	srv.FailNextSnapshot()
	if _, err := p.Create(ctx, provider.CreateRequest{ID: "tda-prod-aurora-manual-1", Tags: tdaTags(provider.TriggerManual)}); err != nil {
		t.Fatal(err)
	}
	s, err := p.Wait(ctx, "tda-prod-aurora-manual-1")
	if err == nil || s.Status != provider.StatusFailed || !strings.Contains(err.Error(), "ended in state failed") ||
		!strings.Contains(err.Error(), "take a new snapshot") {
		t.Fatalf("failed snapshot: %v (%+v)", err, s)
	}

	slow := newTestProvider(t, srv, func(c *Config) { c.SnapshotTimeout = 40 * time.Millisecond })
	srv.SetPolls(1 << 20)
	if _, err := slow.Create(ctx, provider.CreateRequest{ID: "tda-prod-aurora-manual-2", Tags: tdaTags(provider.TriggerManual)}); err != nil {
		t.Fatal(err)
	}
	s, err = slow.Wait(ctx, "tda-prod-aurora-manual-2")
	if !errors.Is(err, provider.ErrBusy) || s.Status != provider.StatusCreating || !strings.Contains(err.Error(), "still creating") {
		t.Fatalf("slow snapshot: %v (%+v)", err, s)
	}
}

func TestListPaginatesAndKeepsOthersSnapshots(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	srv.SetPageLimit(20)
	base := time.Date(2026, 10, 1, 3, 0, 0, 0, time.UTC)
	for i := 0; i < 45; i++ {
		tags := tdaTags(provider.TriggerScheduled)
		if i%5 == 0 {
			tags = map[string]string{"owner": "dba-team"}
		}
		srv.AddSnapshot(fmt.Sprintf("snap-%02d", i), "prod-aurora", base.AddDate(0, 0, i), tags)
	}
	srv.AddSnapshot("other-cluster-snap", "billing-aurora", base, tdaTags(provider.TriggerScheduled))
	p := newTestProvider(t, srv)

	list, err := p.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 45 || list[0].ID != "snap-44" || list[44].ID != "snap-00" {
		t.Fatalf("listed %d snapshots, first %s", len(list), list[0].ID)
	}
	managed := 0
	for _, s := range list {
		if s.Managed() {
			managed++
		}
		if s.Target != "prod-aurora" {
			t.Fatalf("snapshot of another cluster listed: %+v", s)
		}
	}
	if managed != 36 {
		t.Fatalf("%d snapshots recognised as tda's, want 36", managed)
	}
	var markers []string
	for _, r := range srv.Requests() {
		if r.Action != "DescribeDBClusterSnapshots" {
			t.Fatalf("unexpected %s", r.Action)
		}
		if r.Params.Get("SnapshotType") != "manual" || r.Params.Get("DBClusterIdentifier") != "prod-aurora" ||
			r.Params.Get("MaxRecords") != "100" {
			t.Fatalf("list request %v", r.Params)
		}
		markers = append(markers, r.Params.Get("Marker"))
	}
	if !slices.Equal(markers, []string{"", "20", "40"}) {
		t.Fatalf("pages requested with markers %q", markers)
	}
}

func TestFaultsBecomeAdvice(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(*rdstest.Server)
		call   func(*Provider) error
		class  error
		typed  any
		advice string
	}{
		{
			name:  "snapshot exists",
			setup: func(s *rdstest.Server) { s.AddSnapshot("tda-x", "prod-aurora", time.Now(), nil) },
			call: func(p *Provider) error {
				_, err := p.Create(ctx, provider.CreateRequest{ID: "tda-x"})
				return err
			},
			class: provider.ErrAlreadyExists, typed: new(*types.DBClusterSnapshotAlreadyExistsFault),
			advice: "exists already",
		},
		{
			name: "quota",
			setup: func(s *rdstest.Server) {
				s.AddSnapshot("old", "prod-aurora", time.Now(), nil)
				s.SetQuota(1)
			},
			call: func(p *Provider) error {
				_, err := p.Create(ctx, provider.CreateRequest{ID: "tda-y"})
				return err
			},
			class: provider.ErrQuota, typed: new(*types.SnapshotQuotaExceededFault),
			advice: "run `tda snapshot prune`",
		},
		{
			name:  "cluster not available",
			setup: func(s *rdstest.Server) { s.SetClusterStatus("prod-aurora", "stopped") },
			call: func(p *Provider) error {
				_, err := p.Create(ctx, provider.CreateRequest{ID: "tda-z"})
				return err
			},
			class: provider.ErrBusy, typed: new(*types.InvalidDBClusterStateFault),
			advice: "start it if it is stopped",
		},
		{
			name:  "cluster missing",
			setup: func(*rdstest.Server) {},
			call: func(p *Provider) error {
				_, err := p.RestorableRange(ctx)
				if err == nil {
					p.cfg.Cluster = "no-such-cluster"
					_, err = p.RestorableRange(ctx)
				}
				return err
			},
			class: provider.ErrNotFound, typed: new(*types.DBClusterNotFoundFault),
			advice: "no cluster no-such-cluster in region eu-west-1",
		},
		{
			name: "delete while creating",
			setup: func(s *rdstest.Server) {
				s.SetPolls(1 << 20)
			},
			call: func(p *Provider) error {
				if _, err := p.Create(ctx, provider.CreateRequest{ID: "tda-c"}); err != nil {
					return err
				}
				return p.Delete(ctx, "tda-c")
			},
			class: provider.ErrBusy, typed: new(*types.InvalidDBClusterSnapshotStateFault),
			advice: "not available",
		},
		{
			name:   "delete missing",
			setup:  func(*rdstest.Server) {},
			call:   func(p *Provider) error { return p.Delete(ctx, "tda-gone") },
			class:  provider.ErrNotFound,
			typed:  new(*types.DBClusterSnapshotNotFoundFault),
			advice: "tda snapshot list",
		},
		{
			name: "restore onto an existing cluster",
			setup: func(s *rdstest.Server) {
				s.AddCluster("prod-restored", "aurora-postgresql")
				s.AddSnapshot("tda-s", "prod-aurora", time.Now(), nil)
			},
			call: func(p *Provider) error {
				_, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: "tda-s", NewName: "prod-restored"})
				return err
			},
			class: provider.ErrAlreadyExists, typed: new(*types.DBClusterAlreadyExistsFault),
			advice: "restores never overwrite",
		},
		{
			name: "cluster quota",
			setup: func(s *rdstest.Server) {
				s.AddSnapshot("tda-s", "prod-aurora", time.Now(), nil)
				s.Fail("RestoreDBClusterFromSnapshot", "DBClusterQuotaExceededFault", 403, "Quota exceeded")
			},
			call: func(p *Provider) error {
				_, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: "tda-s", NewName: "prod-restored"})
				return err
			},
			class: provider.ErrQuota, typed: new(*types.DBClusterQuotaExceededFault),
			advice: "delete unused clusters",
		},
		{
			name:  "permission",
			setup: func(s *rdstest.Server) { s.Fail("DescribeAccountAttributes", "AccessDenied", 403, "not authorized") },
			call: func(p *Provider) error {
				_, err := p.Quota(ctx)
				return err
			},
			class: provider.ErrInvalid, advice: "grant it in IAM",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := rdstest.NewServer(t)
			srv.AddCluster("prod-aurora", "aurora-postgresql")
			tt.setup(srv)
			err := tt.call(newTestProvider(t, srv))
			if !errors.Is(err, tt.class) {
				t.Fatalf("error %v is not %v", err, tt.class)
			}
			if !strings.Contains(err.Error(), tt.advice) {
				t.Fatalf("error %q does not say %q", err, tt.advice)
			}
			if tt.typed != nil && !errors.As(err, tt.typed) {
				t.Fatalf("error %v does not unwrap to %T", err, tt.typed)
			}
			if provider.Transient(err) != (tt.class == provider.ErrBusy) {
				t.Fatalf("Transient(%v) = %v", err, provider.Transient(err))
			}
		})
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	srv.Fail("DescribeAccountAttributes", "Throttling", 400, "Rate exceeded")
	p := newTestProvider(t, srv, func(c *Config) { c.MaxAttempts = 3 })
	q, err := p.Quota(context.Background())
	if err != nil || q == nil {
		t.Fatalf("quota after a throttled attempt: %v", err)
	}
	if got := srv.Actions(); len(got) != 2 {
		t.Fatalf("calls %v, want the throttled one retried once", got)
	}
}

func TestQuotaAndRestorableRange(t *testing.T) {
	srv := rdstest.NewServer(t)
	c := srv.AddCluster("prod-aurora", "aurora-postgresql")
	for i := 0; i < 3; i++ {
		srv.AddSnapshot(fmt.Sprintf("s%d", i), "prod-aurora", time.Now(), nil)
	}
	p := newTestProvider(t, srv)
	q, err := p.Quota(context.Background())
	if err != nil || q == nil || q.Name != "ManualClusterSnapshots" || q.Used != 3 || q.Max != 100 {
		t.Fatalf("quota %+v %v", q, err)
	}
	r, err := p.RestorableRange(context.Background())
	if err != nil || !r.Latest.Equal(c.Latest.Truncate(time.Millisecond)) || !r.Earliest.Equal(c.Earliest.Truncate(time.Millisecond)) {
		t.Fatalf("range %+v %v, want %v .. %v", r, err, c.Earliest, c.Latest)
	}
}

func TestRestoreFromSnapshotCreatesInstance(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	taken := time.Date(2026, 11, 29, 22, 57, 5, 0, time.UTC)
	srv.AddSnapshot("tda-prod-aurora-anomaly-20261129t225705z", "prod-aurora", taken, tdaTags(provider.TriggerAnomaly))
	p := newTestProvider(t, srv)

	res, err := p.Restore(context.Background(), provider.RestoreRequest{
		SnapshotID: "tda-prod-aurora-anomaly-20261129t225705z", NewName: "prod-restored"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "prod-restored" || !res.RecoveryPoint.Equal(taken) || !strings.HasPrefix(res.Endpoint, "prod-restored.cluster-") ||
		len(res.Created) != 2 {
		t.Fatalf("result %+v", res)
	}
	inst, ok := srv.Instance("prod-restored-instance-1")
	if !ok || inst.Status != "available" || inst.Class != "db.r6g.large" || inst.Engine != "aurora-postgresql" {
		t.Fatalf("instance %+v %v", inst, ok)
	}
	cl, _ := srv.Cluster("prod-restored")
	if cl.SubnetGroup != "app-private" || !slices.Equal(cl.SecurityGroups, []string{"sg-0a1b2c3d"}) {
		t.Fatalf("restored cluster not placed like its source: %+v", cl)
	}

	var seq []string
	for _, a := range srv.Actions() {
		if len(seq) == 0 || seq[len(seq)-1] != a {
			seq = append(seq, a)
		}
	}
	want := []string{"DescribeDBClusters", "DescribeDBInstances", "DescribeDBClusterSnapshots",
		"RestoreDBClusterFromSnapshot", "DescribeDBClusters", "CreateDBInstance", "DescribeDBInstances", "DescribeDBClusters"}
	if !slices.Equal(seq, want) {
		t.Fatalf("calls\n  %v\nwant\n  %v", seq, want)
	}
	for _, r := range srv.Requests() {
		switch r.Action {
		case "RestoreDBClusterFromSnapshot":
			if r.Params.Get("Engine") != "aurora-postgresql" || r.Params.Get("EngineVersion") != "15.4" ||
				r.Params.Get("SnapshotIdentifier") != "tda-prod-aurora-anomaly-20261129t225705z" {
				t.Fatalf("restore request %v", r.Params)
			}
			if v, _ := r.Tag("restored_from"); v != "prod-aurora" {
				t.Fatalf("restored cluster not tagged: %v", r.Params)
			}
		case "CreateDBInstance":
			if r.Params.Get("DBClusterIdentifier") != "prod-restored" || r.Params.Get("DBInstanceClass") != "db.r6g.large" {
				t.Fatalf("create instance request %v", r.Params)
			}
		}
	}
}

func TestRestoreToPointInTime(t *testing.T) {
	srv := rdstest.NewServer(t)
	c := srv.AddCluster("prod-aurora", "aurora-mysql")
	p := newTestProvider(t, srv)
	ctx := context.Background()
	at := c.Latest.Add(-time.Hour).Truncate(time.Second)

	res, err := p.Restore(ctx, provider.RestoreRequest{ToTime: at, NewName: "prod-pitr"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.RecoveryPoint.Equal(at) {
		t.Fatalf("recovery point %v, want %v", res.RecoveryPoint, at)
	}
	var restore rdstest.Request
	for _, r := range srv.Requests() {
		if r.Action == "RestoreDBClusterToPointInTime" {
			restore = r
		}
	}
	if restore.Params.Get("SourceDBClusterIdentifier") != "prod-aurora" || restore.Params.Get("RestoreType") != "full-copy" ||
		restore.Params.Get("RestoreToTime") != at.Format(time.RFC3339) || restore.Params.Has("UseLatestRestorableTime") {
		t.Fatalf("point-in-time request %v", restore.Params)
	}
	if inst, ok := srv.Instance("prod-pitr-instance-1"); !ok || inst.Engine != "aurora-mysql" {
		t.Fatalf("no instance in the restored cluster: %+v", inst)
	}

	if _, err := p.Restore(ctx, provider.RestoreRequest{Latest: true, NewName: "prod-latest"}); err != nil {
		t.Fatal(err)
	}

	n := len(srv.Requests())
	_, err = p.Restore(ctx, provider.RestoreRequest{ToTime: c.Earliest.Add(-time.Hour), NewName: "prod-too-old"})
	if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(err.Error(), "outside the restorable window") {
		t.Fatalf("too old: %v", err)
	}
	for _, r := range srv.Requests()[n:] {
		if strings.HasPrefix(r.Action, "Restore") {
			t.Fatalf("a restore was requested for a time outside the window")
		}
	}
}

func TestRestoreRefusalsAndPartialRestore(t *testing.T) {
	ctx := context.Background()
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	srv.AddSnapshot("tda-s", "prod-aurora", time.Now(), nil)
	p := newTestProvider(t, srv)

	for _, req := range []provider.RestoreRequest{
		{SnapshotID: "tda-s", NewName: "prod-aurora"},
		{SnapshotID: "tda-s", NewName: "Bad_Name"},
		{SnapshotID: "tda-s", NewName: strings.Repeat("a", 60)},
		{SnapshotID: "tda-s", Latest: true, NewName: "two-modes"},
	} {
		if _, err := p.Restore(ctx, req); !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("restore %+v: %v", req, err)
		}
	}
	if got := srv.Actions(); len(got) != 0 {
		t.Fatalf("refused restores called RDS: %v", got)
	}

	// The instance cannot be created: the operator gets the command that finishes the job.
	srv.Fail("CreateDBInstance", "InsufficientDBInstanceCapacity", 400, "no capacity")
	res, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: "tda-s", NewName: "prod-restored"})
	if err == nil || !strings.Contains(err.Error(), "aws rds create-db-instance --region eu-west-1 --db-cluster-identifier prod-restored") ||
		len(res.Created) != 1 {
		t.Fatalf("partial restore: %v %+v", err, res)
	}
}

func TestRestoreAfterSourceClusterDeleted(t *testing.T) {
	ctx := context.Background()
	srv := rdstest.NewServer(t)
	srv.AddSnapshot("tda-s", "prod-aurora", time.Now(), nil)

	_, err := newTestProvider(t, srv).Restore(ctx, provider.RestoreRequest{SnapshotID: "tda-s", NewName: "prod-restored"})
	if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(err.Error(), "set instance_class") {
		t.Fatalf("restore without a class to copy: %v", err)
	}
	p := newTestProvider(t, srv, func(c *Config) { c.InstanceClass = "db.r7g.xlarge"; c.SubnetGroup = "dr-subnets" })
	if _, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: "tda-s", NewName: "prod-restored"}); err != nil {
		t.Fatal(err)
	}
	if inst, _ := srv.Instance("prod-restored-instance-1"); inst.Class != "db.r7g.xlarge" {
		t.Fatalf("instance %+v", inst)
	}
	_, err = p.Restore(ctx, provider.RestoreRequest{Latest: true, NewName: "prod-latest"})
	if !errors.Is(err, provider.ErrNotFound) || !strings.Contains(err.Error(), "restore a snapshot instead") {
		t.Fatalf("point in time without the source cluster: %v", err)
	}
}
