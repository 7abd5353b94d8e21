package aurora

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

func isAPIError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}

// explain turns an RDS fault into a provider.Error with its class and what the operator should
// do. The SDK's typed fault (e.g. *types.SnapshotQuotaExceededFault) stays reachable with
// errors.As.
func (p *Provider) explain(op string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		if strings.Contains(err.Error(), "failed to retrieve credentials") {
			return &provider.Error{Op: op, Err: err, Class: provider.ErrInvalid,
				Advice: "configure AWS credentials (environment, shared config file or an instance role)"}
		}
		return &provider.Error{Op: op, Err: err,
			Advice: "RDS could not be reached; check the network and the region (" + p.region + ")"}
	}
	e := &provider.Error{Op: op, Err: err}
	cluster := p.cfg.Cluster
	switch ae.ErrorCode() {
	case "DBClusterSnapshotAlreadyExistsFault":
		e.Class = provider.ErrAlreadyExists
		e.Advice = "a snapshot with this identifier exists already; list them with `tda snapshot list`"
	case "SnapshotQuotaExceeded":
		e.Class = provider.ErrQuota
		e.Advice = "the account's manual cluster snapshot quota in " + p.region +
			" is used up (AWS Backup recovery points count too): run `tda snapshot prune`, delete manual snapshots you no longer need, or ask AWS for a higher quota"
	case "InvalidDBClusterStateFault":
		e.Class = provider.ErrBusy
		e.Advice = fmt.Sprintf("cluster %s is not available (stopped, being modified, or busy with another snapshot): "+
			"wait until `aws rds describe-db-clusters --db-cluster-identifier %s` shows available (start it if it is stopped), then retry", cluster, cluster)
	case "InvalidDBClusterSnapshotStateFault":
		e.Class = provider.ErrBusy
		e.Advice = "the snapshot is not available (still creating, or being deleted): wait until `tda snapshot list` shows it available, then retry"
	case "DBClusterNotFoundFault":
		e.Class = provider.ErrNotFound
		e.Advice = fmt.Sprintf("no cluster %s in region %s: check cluster and region in the aurora block", cluster, p.region)
	case "DBClusterSnapshotNotFoundFault":
		e.Class = provider.ErrNotFound
		e.Advice = "no such snapshot: list them with `tda snapshot list`"
	case "DBClusterAlreadyExistsFault", "DBInstanceAlreadyExists":
		e.Class = provider.ErrAlreadyExists
		e.Advice = "restores never overwrite: choose another name with -to"
	case "DBClusterQuotaExceededFault", "InstanceQuotaExceeded", "StorageQuotaExceeded":
		e.Class = provider.ErrQuota
		e.Advice = "an account quota in " + p.region + " is reached: delete unused clusters or instances, or ask AWS for a higher quota"
	case "InsufficientDBClusterCapacityFault", "InsufficientDBInstanceCapacity":
		e.Class = provider.ErrBusy
		e.Advice = "AWS has no capacity for this now: retry later, or set instance_class in the aurora block to another class"
	case "InvalidRestoreFault":
		e.Class = provider.ErrInvalid
		e.Advice = "the restore time is outside the cluster's restorable window: see `tda snapshot list`"
	case "InvalidParameterValue", "InvalidParameterCombination":
		e.Class = provider.ErrInvalid
		e.Advice = "RDS rejected a parameter; check the aurora block (instance_class, subnet_group, security_group_ids)"
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
		e.Class = provider.ErrInvalid
		e.Advice = "the AWS credentials lack permission for this RDS action: grant it in IAM (see docs/recovery.md for the policy)"
	case "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException":
		e.Class = provider.ErrInvalid
		e.Advice = "AWS rejected the credentials: refresh them or check the profile in use"
	}
	return e
}
