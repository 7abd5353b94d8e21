package aurora

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// instanceSuffix names the writer instance created in a restored cluster.
const instanceSuffix = "-instance-1"

// placement is where and how a restored cluster runs, copied from the source cluster unless
// the config says otherwise.
type placement struct {
	subnetGroup    string
	securityGroups []string
	instanceClass  string
	serverless     *types.ServerlessV2ScalingConfiguration
}

// Restore implements provider.Provider: RestoreDBClusterFromSnapshot or
// RestoreDBClusterToPointInTime into a new cluster, wait until it is available, then
// CreateDBInstance (a restored cluster has no instance and serves nothing without one) and
// wait for that.
func (p *Provider) Restore(ctx context.Context, req provider.RestoreRequest) (provider.RestoreResult, error) {
	op := "restore into new cluster " + req.NewName
	if req.NewName == p.cfg.Cluster {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    errors.New("the new cluster is the protected cluster"),
			Advice: "restores never overwrite: choose a new name with -to and switch the application over once you have checked it"}
	}
	if err := provider.ValidIdentifier(req.NewName); err != nil {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid, Err: err}
	}
	if len(req.NewName)+len(instanceSuffix) > provider.MaxIdentifierLength {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    fmt.Errorf("name %q leaves no room for the instance name %s", req.NewName, req.NewName+instanceSuffix),
			Advice: fmt.Sprintf("use at most %d characters", provider.MaxIdentifierLength-len(instanceSuffix))}
	}
	modes := 0
	for _, set := range []bool{req.SnapshotID != "", !req.ToTime.IsZero(), req.Latest} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err: errors.New("give exactly one of a snapshot, a time, or the latest restorable time")}
	}
	if req.SnapshotID != "" {
		if err := provider.ValidSnapshotID(req.SnapshotID); err != nil {
			return provider.RestoreResult{}, err
		}
	}

	src, srcErr := p.describeCluster(ctx, p.cfg.Cluster)
	if srcErr != nil && !errors.Is(srcErr, provider.ErrNotFound) {
		return provider.RestoreResult{}, srcErr
	}
	place := p.placement(ctx, src)
	if place.instanceClass == "" {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    fmt.Errorf("no instance class: cluster %s has no writer instance to copy it from", p.cfg.Cluster),
			Advice: "set instance_class in the aurora block (e.g. \"db.r6g.large\")"}
	}
	tags := toTags(map[string]string{provider.TagCreatedBy: provider.CreatedByTDA,
		provider.TagCreatedAt: time.Now().UTC().Format(time.RFC3339), "restored_from": p.cfg.Cluster})

	var (
		engine   string
		recovery time.Time
	)
	if req.SnapshotID != "" {
		snap, err := p.describeSnapshot(ctx, req.SnapshotID)
		if err != nil {
			return provider.RestoreResult{}, err
		}
		if s := aws.ToString(snap.Status); s != provider.StatusAvailable {
			return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrBusy,
				Err: fmt.Errorf("snapshot %s is %s", req.SnapshotID, s), Advice: "choose an available snapshot from `tda snapshot list`"}
		}
		engine, recovery = aws.ToString(snap.Engine), fromSDK(snap).Time
		_, err = p.client.RestoreDBClusterFromSnapshot(ctx, &rds.RestoreDBClusterFromSnapshotInput{
			DBClusterIdentifier:              aws.String(req.NewName),
			SnapshotIdentifier:               aws.String(req.SnapshotID),
			Engine:                           snap.Engine,
			EngineVersion:                    snap.EngineVersion,
			DBSubnetGroupName:                optional(place.subnetGroup),
			VpcSecurityGroupIds:              place.securityGroups,
			ServerlessV2ScalingConfiguration: place.serverless,
			Tags:                             tags,
		})
		if err != nil {
			return provider.RestoreResult{}, p.explain(fmt.Sprintf("restore snapshot %s into cluster %s", req.SnapshotID, req.NewName), err)
		}
	} else {
		if src == nil {
			return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrNotFound, Err: srcErr,
				Advice: "a point-in-time restore needs the source cluster; restore a snapshot instead (-snapshot ID)"}
		}
		window := provider.TimeRange{Earliest: aws.ToTime(src.EarliestRestorableTime), Latest: aws.ToTime(src.LatestRestorableTime)}
		in := &rds.RestoreDBClusterToPointInTimeInput{
			DBClusterIdentifier:              aws.String(req.NewName),
			SourceDBClusterIdentifier:        aws.String(p.cfg.Cluster),
			RestoreType:                      aws.String("full-copy"),
			DBSubnetGroupName:                optional(place.subnetGroup),
			VpcSecurityGroupIds:              place.securityGroups,
			ServerlessV2ScalingConfiguration: place.serverless,
			Tags:                             tags,
		}
		if req.Latest {
			in.UseLatestRestorableTime = aws.Bool(true)
			recovery = window.Latest
		} else {
			if req.ToTime.Before(window.Earliest) || req.ToTime.After(window.Latest) {
				return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
					Err: fmt.Errorf("%s is outside the restorable window %s .. %s", req.ToTime.UTC().Format(time.RFC3339),
						window.Earliest.UTC().Format(time.RFC3339), window.Latest.UTC().Format(time.RFC3339)),
					Advice: "choose a time inside the window, or restore a snapshot"}
			}
			in.RestoreToTime = aws.Time(req.ToTime.UTC())
			recovery = req.ToTime.UTC()
		}
		engine = aws.ToString(src.Engine)
		if _, err := p.client.RestoreDBClusterToPointInTime(ctx, in); err != nil {
			return provider.RestoreResult{}, p.explain(fmt.Sprintf("restore cluster %s to %s into %s", p.cfg.Cluster,
				recovery.Format(time.RFC3339), req.NewName), err)
		}
	}
	created := []string{"cluster " + req.NewName}
	p.log.Info("restore started", "cluster", req.NewName, "recovery_point", recovery)

	clusterWaiter := rds.NewDBClusterAvailableWaiter(p.client, func(o *rds.DBClusterAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = p.cfg.PollInterval, p.maxDelay()
	})
	if err := clusterWaiter.Wait(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(req.NewName)},
		p.cfg.RestoreTimeout); err != nil {
		return provider.RestoreResult{Name: req.NewName, RecoveryPoint: recovery, Created: created},
			&provider.Error{Op: "wait for restored cluster " + req.NewName, Err: err,
				Advice: "the restore goes on in AWS; follow it with `aws rds describe-db-clusters --db-cluster-identifier " + req.NewName +
					"`, then create its instance: " + p.createInstanceCommand(req.NewName, place.instanceClass, engine)}
	}

	instance := req.NewName + instanceSuffix
	if _, err := p.client.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{
		DBClusterIdentifier:  aws.String(req.NewName),
		DBInstanceIdentifier: aws.String(instance),
		DBInstanceClass:      aws.String(place.instanceClass),
		Engine:               aws.String(engine),
		Tags:                 tags,
	}); err != nil {
		e := p.explain("create instance "+instance+" in restored cluster "+req.NewName, err).(*provider.Error)
		e.Advice = "the cluster was restored but serves nothing without an instance: fix the cause, then run " +
			p.createInstanceCommand(req.NewName, place.instanceClass, engine) + " (" + e.Advice + ")"
		return provider.RestoreResult{Name: req.NewName, RecoveryPoint: recovery, Created: created}, e
	}
	created = append(created, "instance "+instance+" ("+place.instanceClass+")")
	instanceWaiter := rds.NewDBInstanceAvailableWaiter(p.client, func(o *rds.DBInstanceAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = p.cfg.PollInterval, p.maxDelay()
	})
	if err := instanceWaiter.Wait(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(instance)},
		p.cfg.RestoreTimeout); err != nil {
		return provider.RestoreResult{Name: req.NewName, RecoveryPoint: recovery, Created: created},
			&provider.Error{Op: "wait for instance " + instance, Err: err,
				Advice: "creation goes on in AWS; follow it with `aws rds describe-db-instances --db-instance-identifier " + instance + "`"}
	}
	res := provider.RestoreResult{Name: req.NewName, RecoveryPoint: recovery, Created: created}
	if c, err := p.describeCluster(ctx, req.NewName); err == nil {
		res.Endpoint = aws.ToString(c.Endpoint)
		res.Port, res.User, res.Database = int(aws.ToInt32(c.Port)), aws.ToString(c.MasterUsername), aws.ToString(c.DatabaseName)
	}
	return res, nil
}

// placement copies the source cluster's network, capacity and writer class, overridden by the
// aurora block's settings.
func (p *Provider) placement(ctx context.Context, src *types.DBCluster) placement {
	pl := placement{subnetGroup: p.cfg.SubnetGroup, securityGroups: p.cfg.SecurityGroupIDs, instanceClass: p.cfg.InstanceClass}
	if src == nil {
		return pl
	}
	if pl.subnetGroup == "" {
		pl.subnetGroup = aws.ToString(src.DBSubnetGroup)
	}
	if len(pl.securityGroups) == 0 {
		for _, sg := range src.VpcSecurityGroups {
			pl.securityGroups = append(pl.securityGroups, aws.ToString(sg.VpcSecurityGroupId))
		}
	}
	if src.ServerlessV2ScalingConfiguration != nil && src.ServerlessV2ScalingConfiguration.MaxCapacity != nil {
		pl.serverless = &types.ServerlessV2ScalingConfiguration{
			MinCapacity: src.ServerlessV2ScalingConfiguration.MinCapacity,
			MaxCapacity: src.ServerlessV2ScalingConfiguration.MaxCapacity,
		}
	}
	if pl.instanceClass == "" {
		for _, m := range src.DBClusterMembers {
			if !aws.ToBool(m.IsClusterWriter) {
				continue
			}
			out, err := p.client.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: m.DBInstanceIdentifier})
			if err == nil && len(out.DBInstances) > 0 {
				pl.instanceClass = aws.ToString(out.DBInstances[0].DBInstanceClass)
			}
			break
		}
	}
	return pl
}

func (p *Provider) createInstanceCommand(cluster, class, engine string) string {
	return fmt.Sprintf("`aws rds create-db-instance --region %s --db-cluster-identifier %s --db-instance-identifier %s --db-instance-class %s --engine %s`",
		p.region, cluster, cluster+instanceSuffix, class, engine)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
