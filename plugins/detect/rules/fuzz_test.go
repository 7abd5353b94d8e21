package rules

import (
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// FuzzRestore feeds arbitrary bytes to the snapshot decoder: it must fail cleanly or give an
// engine that keeps working.
func FuzzRestore(f *testing.F) {
	mk := func() *Engine {
		r := &Rule{Name: "r", Match: []string{"password_changed"}, Threshold: 2, Window: time.Minute, GroupBy: []string{"ip"}, Excerpt: 2}
		_ = r.Check()
		return NewEngine([]*Rule{r}, Options{})
	}
	seed := mk()
	evs := every(5, 0, time.Second, "password_changed", "ip", "1.2.3.4")
	run(seed, evs)
	f.Add(seed.Snapshot())
	f.Add([]byte("TDAR\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := mk()
		if err := e.Restore(b); err != nil {
			return
		}
		more := every(5, time.Hour, time.Second, "password_changed", "ip", "1.2.3.4")
		run(e, more)
		_ = e.Snapshot()
		_ = sdk.Watermark{}
	})
}
