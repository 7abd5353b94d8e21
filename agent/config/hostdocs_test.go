package config

import (
	"testing"

	"github.com/tda-dev/tda/sdk"
)

// The documentation of a sink's host-level settings lists exactly what the decoder reads, and
// no plugin may use those names.
func TestSinkHostSpecMatchesTheSchema(t *testing.T) {
	documented := map[string]bool{}
	spec := HostSpec(sdk.KindSink)
	for _, f := range spec.Fields {
		documented[f.Name] = true
	}
	for _, b := range spec.Blocks {
		documented[b.Name] = true
	}
	read := map[string]bool{}
	for _, a := range sinkSchema.Attributes {
		read[a.Name] = true
	}
	for _, b := range sinkSchema.Blocks {
		read[b.Type] = true
	}
	for name := range read {
		if !documented[name] {
			t.Errorf("sink attribute %q is read but not in HostSpec", name)
		}
		if !sdk.ReservedNames[name] {
			t.Errorf("sink attribute %q is not in sdk.ReservedNames: a plugin could claim it", name)
		}
	}
	for name := range documented {
		if !read[name] {
			t.Errorf("HostSpec documents %q, which the decoder does not read", name)
		}
	}
}
