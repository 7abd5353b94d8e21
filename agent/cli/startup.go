package cli

import (
	"time"
)

// startupSteps times the steps of `tda run` until its pipelines run, for the log line that
// says where start-up went (BenchmarkStartup in agent/bench reports each step).
type startupSteps struct {
	last  time.Time
	steps []startupStep
}

type startupStep struct {
	name string
	took time.Duration
}

func newStartupSteps() *startupSteps { return &startupSteps{last: time.Now()} }

// done ends the step called name: the time since the previous step ended (or since
// newStartupSteps).
func (s *startupSteps) done(name string) {
	now := time.Now()
	s.steps = append(s.steps, startupStep{name: name, took: now.Sub(s.last)})
	s.last = now
}

// fields are the steps as log fields, NAME_ms=milliseconds (to the tenth) in their order,
// and their total.
func (s *startupSteps) fields() []any {
	var total time.Duration
	out := make([]any, 0, 2*len(s.steps)+2)
	for _, st := range s.steps {
		out = append(out, st.name+"_ms", ms(st.took))
		total += st.took
	}
	return append(out, "total_ms", ms(total))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()/100) / 10 }
