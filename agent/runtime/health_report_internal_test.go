package runtime

import "testing"

// A source's own status: healthy with a reason is its report; unhealthy, the reason; a
// later status replaces the earlier one either way.
func TestSourceStatusReport(t *testing.T) {
	h := newHealth()
	const addr = "source.nats.fleet"
	steps := []struct {
		healthy bool
		reason  string
		report  string
		failing string
	}{
		{true, "partitions [0,1] of 4", "partitions [0,1] of 4", ""},
		{false, "NATS unreachable", "", "NATS unreachable"},
		{true, "partitions [0,1,2,3] of 4", "partitions [0,1,2,3] of 4", ""},
		{true, "", "", ""},
	}
	for i, s := range steps {
		h.setStatus(addr, s.healthy, s.reason)
		var c ComponentHealth
		for _, x := range h.Components() {
			if x.Address == addr {
				c = x
			}
		}
		if c.Healthy != s.healthy || c.Report != s.report || c.Reason != s.failing {
			t.Fatalf("step %d: healthy %v report %q reason %q; want %v %q %q", i, c.Healthy, c.Report, c.Reason, s.healthy, s.report, s.failing)
		}
	}
}
