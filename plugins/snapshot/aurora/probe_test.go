package aurora

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// TestProbe checks that DescribeDBClusters, answered by the RDS double through the real SDK,
// tells a usable cluster from bad credentials, a missing permission, a wrong identifier and a
// stopped cluster, each with what to fix.
func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*rdstest.Server)
		class error
		want  []string
	}{
		{"available", func(*rdstest.Server) {}, nil, nil},
		{"being backed up", func(s *rdstest.Server) { s.SetClusterStatus("prod-aurora", "backing-up") }, nil, nil},
		{"rejected credentials", func(s *rdstest.Server) {
			s.Fail("DescribeDBClusters", "InvalidClientTokenId", 403, "The security token included in the request is invalid.")
		}, provider.ErrInvalid, []string{"security token included in the request is invalid", "AWS rejected the credentials"}},
		{"no permission", func(s *rdstest.Server) {
			s.Fail("DescribeDBClusters", "AccessDenied", 403, "not authorized to perform: rds:DescribeDBClusters")
		}, provider.ErrInvalid, []string{"rds:DescribeDBClusters", "grant it in IAM"}},
		{"wrong cluster", func(s *rdstest.Server) {
			s.Fail("DescribeDBClusters", "DBClusterNotFoundFault", 404, "DBCluster prod-aurora not found")
		}, provider.ErrNotFound, []string{"check cluster and region in the aurora block"}},
		{"stopped", func(s *rdstest.Server) { s.SetClusterStatus("prod-aurora", "stopped") }, provider.ErrBusy,
			[]string{"cluster is stopped", "start it or wait for it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := rdstest.NewServer(t)
			srv.AddCluster("prod-aurora", "aurora-postgresql")
			tc.setup(srv)
			p := newTestProvider(t, srv)
			err := p.Probe(context.Background())
			if tc.class == nil {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, tc.class) {
				t.Fatalf("probe: %v, want class %v", err, tc.class)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}
