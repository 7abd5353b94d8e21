// Package aurora is the snapshot provider for Amazon Aurora clusters, through
// github.com/aws/aws-sdk-go-v2/service/rds: tagged manual cluster snapshots, waiters with
// timeouts, paginated listing, deletion, and restores (from a snapshot or to a point in time)
// that also create the writer instance a restored cluster needs before it serves anything.
// Every RDS fault comes back as a provider.Error telling the operator what to do.
package aurora

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// Config configures the provider.
type Config struct {
	// Cluster is the DB cluster identifier to protect.
	Cluster string
	// Region is the AWS region ("" = from the default AWS configuration chain).
	Region string
	// Endpoint overrides the RDS endpoint (LocalStack and tests).
	Endpoint string
	// InstanceClass is the class of the instance created in a restored cluster
	// ("" = the source cluster writer's class).
	InstanceClass string
	// SubnetGroup and SecurityGroupIDs place a restored cluster ("" / nil = the source's).
	SubnetGroup      string
	SecurityGroupIDs []string
	// PollInterval is the waiters' first delay between polls (0 = 30s); delays grow up to
	// four times it.
	PollInterval time.Duration
	// SnapshotTimeout bounds the wait for a snapshot to become available (0 = 60m).
	SnapshotTimeout time.Duration
	// RestoreTimeout bounds the wait for a restored cluster and its instance (0 = 2h).
	RestoreTimeout time.Duration
	// MaxAttempts is the SDK retryer's attempts for throttling and 5xx (0 = SDK default, 3).
	MaxAttempts int
	// Logger receives progress messages (nil = none).
	Logger hclog.Logger
}

// Provider snapshots and restores one Aurora cluster.
type Provider struct {
	cfg    Config
	client *rds.Client
	region string
	log    hclog.Logger
}

var _ provider.Provider = (*Provider)(nil)

// New loads the AWS configuration (environment, shared files, instance role; credentials are
// resolved on first use) and returns a provider.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Cluster == "" {
		return nil, errors.New("aurora: cluster is required")
	}
	if err := provider.ValidIdentifier(cfg.Cluster); err != nil {
		return nil, fmt.Errorf("aurora: cluster: %w", err)
	}
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aurora: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("aurora: no AWS region: set region in the aurora block or AWS_REGION")
	}
	client := rds.NewFromConfig(awsCfg, func(o *rds.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.MaxAttempts > 0 {
			o.RetryMaxAttempts = cfg.MaxAttempts
		}
	})
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.SnapshotTimeout <= 0 {
		cfg.SnapshotTimeout = 60 * time.Minute
	}
	if cfg.RestoreTimeout <= 0 {
		cfg.RestoreTimeout = 2 * time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Provider{cfg: cfg, client: client, region: awsCfg.Region, log: log}, nil
}

// Kind implements provider.Provider.
func (p *Provider) Kind() string { return "aurora" }

// Target implements provider.Provider: the cluster identifier.
func (p *Provider) Target() string { return p.cfg.Cluster }

// Region returns the AWS region in use.
func (p *Provider) Region() string { return p.region }

// Capabilities implements provider.Provider.
func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{PointInTime: true, DeletesFailed: false}
}

// Close implements provider.Provider: nothing runs in the background.
func (p *Provider) Close(context.Context) error { return nil }

func (p *Provider) maxDelay() time.Duration { return 4 * p.cfg.PollInterval }

// Create implements provider.Provider: CreateDBClusterSnapshot with the tags. The snapshot's
// point in time is when RDS accepted the request.
func (p *Provider) Create(ctx context.Context, req provider.CreateRequest) (provider.Snapshot, error) {
	op := fmt.Sprintf("create snapshot %s of cluster %s", req.ID, p.cfg.Cluster)
	if err := provider.ValidIdentifier(req.ID); err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrInvalid, Err: err}
	}
	out, err := p.client.CreateDBClusterSnapshot(ctx, &rds.CreateDBClusterSnapshotInput{
		DBClusterIdentifier:         aws.String(p.cfg.Cluster),
		DBClusterSnapshotIdentifier: aws.String(req.ID),
		Tags:                        toTags(req.Tags),
	})
	if err != nil {
		return provider.Snapshot{}, p.explain(op, err)
	}
	s := fromSDK(out.DBClusterSnapshot)
	if s.Time.IsZero() {
		s.Time = time.Now().UTC()
	}
	p.log.Info("snapshot started", "snapshot", req.ID, "cluster", p.cfg.Cluster)
	return s, nil
}

// Wait implements provider.Provider with the SDK's DBClusterSnapshotAvailable waiter.
func (p *Provider) Wait(ctx context.Context, id string) (provider.Snapshot, error) {
	op := "wait for snapshot " + id
	w := rds.NewDBClusterSnapshotAvailableWaiter(p.client, func(o *rds.DBClusterSnapshotAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = p.cfg.PollInterval, p.maxDelay()
	})
	_, err := w.WaitForOutput(ctx, &rds.DescribeDBClusterSnapshotsInput{DBClusterSnapshotIdentifier: aws.String(id)},
		p.cfg.SnapshotTimeout)
	if err == nil {
		return p.Get(ctx, id)
	}
	if ctx.Err() != nil {
		return provider.Snapshot{}, fmt.Errorf("%s: %w", op, ctx.Err())
	}
	if isAPIError(err) {
		return provider.Snapshot{}, p.explain(op, err)
	}
	// The waiter gave up: report the state the snapshot is in.
	s, gerr := p.Get(ctx, id)
	if gerr != nil {
		return provider.Snapshot{}, gerr
	}
	if s.Status == provider.StatusCreating {
		return s, &provider.Error{Op: op, Class: provider.ErrBusy,
			Err:    fmt.Errorf("still creating after %s", p.cfg.SnapshotTimeout),
			Advice: "RDS carries on in the background; check it with `tda snapshot list` and raise wait_timeout if this is normal for the cluster"}
	}
	return s, &provider.Error{Op: op, Err: fmt.Errorf("snapshot ended in state %s", s.Status),
		Advice: "check the cluster's events in the RDS console (`aws rds describe-events --source-type db-cluster-snapshot`) and take a new snapshot"}
}

// Get implements provider.Provider.
func (p *Provider) Get(ctx context.Context, id string) (provider.Snapshot, error) {
	snap, err := p.describeSnapshot(ctx, id)
	if err != nil {
		return provider.Snapshot{}, err
	}
	return fromSDK(snap), nil
}

func (p *Provider) describeSnapshot(ctx context.Context, id string) (*types.DBClusterSnapshot, error) {
	op := "describe snapshot " + id
	if err := provider.ValidSnapshotID(id); err != nil {
		return nil, err
	}
	out, err := p.client.DescribeDBClusterSnapshots(ctx, &rds.DescribeDBClusterSnapshotsInput{
		DBClusterSnapshotIdentifier: aws.String(id)})
	if err != nil {
		return nil, p.explain(op, err)
	}
	if len(out.DBClusterSnapshots) == 0 {
		return nil, &provider.Error{Op: op, Class: provider.ErrNotFound, Advice: "run `tda snapshot list`"}
	}
	return &out.DBClusterSnapshots[0], nil
}

// List implements provider.Provider: every manual snapshot of the cluster, page by page
// (RDS cannot filter by tag; tda's own are told apart by their created_by tag).
func (p *Provider) List(ctx context.Context) ([]provider.Snapshot, error) {
	pages := rds.NewDescribeDBClusterSnapshotsPaginator(p.client, &rds.DescribeDBClusterSnapshotsInput{
		DBClusterIdentifier: aws.String(p.cfg.Cluster),
		SnapshotType:        aws.String("manual"),
		MaxRecords:          aws.Int32(100),
	})
	var out []provider.Snapshot
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, p.explain("list snapshots of cluster "+p.cfg.Cluster, err)
		}
		for i := range page.DBClusterSnapshots {
			out = append(out, fromSDK(&page.DBClusterSnapshots[i]))
		}
	}
	provider.SortNewestFirst(out)
	return out, nil
}

// Delete implements provider.Provider.
func (p *Provider) Delete(ctx context.Context, id string) error {
	if err := provider.ValidSnapshotID(id); err != nil {
		return err
	}
	_, err := p.client.DeleteDBClusterSnapshot(ctx, &rds.DeleteDBClusterSnapshotInput{
		DBClusterSnapshotIdentifier: aws.String(id)})
	if err != nil {
		return p.explain("delete snapshot "+id, err)
	}
	return nil
}

// RestorableRange implements provider.Provider from DescribeDBClusters.
func (p *Provider) RestorableRange(ctx context.Context) (provider.TimeRange, error) {
	c, err := p.describeCluster(ctx, p.cfg.Cluster)
	if err != nil {
		return provider.TimeRange{}, err
	}
	return provider.TimeRange{Earliest: aws.ToTime(c.EarliestRestorableTime).UTC(),
		Latest: aws.ToTime(c.LatestRestorableTime).UTC()}, nil
}

func (p *Provider) describeCluster(ctx context.Context, id string) (*types.DBCluster, error) {
	op := "describe cluster " + id
	out, err := p.client.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(id)})
	if err != nil {
		return nil, p.explain(op, err)
	}
	if len(out.DBClusters) == 0 {
		return nil, &provider.Error{Op: op, Class: provider.ErrNotFound}
	}
	return &out.DBClusters[0], nil
}

// Quota implements provider.Provider: the ManualClusterSnapshots account quota.
func (p *Provider) Quota(ctx context.Context) (*provider.Quota, error) {
	out, err := p.client.DescribeAccountAttributes(ctx, &rds.DescribeAccountAttributesInput{})
	if err != nil {
		return nil, p.explain("describe account quotas", err)
	}
	for _, q := range out.AccountQuotas {
		if aws.ToString(q.AccountQuotaName) == "ManualClusterSnapshots" {
			return &provider.Quota{Name: "ManualClusterSnapshots", Used: aws.ToInt64(q.Used), Max: aws.ToInt64(q.Max)}, nil
		}
	}
	return nil, nil
}

func toTags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(provider.CleanTagValue(m[k]))})
	}
	return tags
}

func fromSDK(s *types.DBClusterSnapshot) provider.Snapshot {
	if s == nil {
		return provider.Snapshot{}
	}
	out := provider.Snapshot{ID: aws.ToString(s.DBClusterSnapshotIdentifier), Target: aws.ToString(s.DBClusterIdentifier),
		Status: aws.ToString(s.Status), Tags: map[string]string{}}
	for _, t := range s.TagList {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	switch {
	case s.SnapshotCreateTime != nil:
		out.Time = s.SnapshotCreateTime.UTC()
	case out.Tags[provider.TagCreatedAt] != "":
		out.Time, _ = time.Parse(time.RFC3339, out.Tags[provider.TagCreatedAt])
	}
	if s.AllocatedStorage != nil {
		out.SizeBytes = int64(*s.AllocatedStorage) << 30
	}
	if strings.HasPrefix(out.Status, "incompatible") {
		out.Detail = "RDS reports " + out.Status
	}
	return out
}
