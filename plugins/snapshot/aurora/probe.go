package aurora

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

var _ provider.Prober = (*Provider)(nil)

// Probe implements provider.Prober: DescribeDBClusters on the protected cluster proves that
// RDS is reachable, that the credentials are valid and allowed to describe it, and that the
// cluster exists; a cluster that is not available cannot be snapshotted now.
func (p *Provider) Probe(ctx context.Context) error {
	c, err := p.describeCluster(ctx, p.cfg.Cluster)
	if err != nil {
		return err
	}
	switch status := aws.ToString(c.Status); status {
	case "available", "backing-up", "modifying", "upgrading", "maintenance":
		// Snapshots can be requested (RDS queues them while it backs up or modifies).
		return nil
	default:
		return &provider.Error{Op: "probe cluster " + p.cfg.Cluster, Class: provider.ErrBusy,
			Err:    fmt.Errorf("cluster is %s", status),
			Advice: fmt.Sprintf("no snapshot can be taken until cluster %s is available: start it or wait for it", p.cfg.Cluster)}
	}
}
