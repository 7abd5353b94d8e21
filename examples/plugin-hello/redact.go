// Package hello is an example third-party tda plugin, written against the SDK alone. It
// offers two components in one binary:
//
//   - processor "redact" masks e-mail addresses, bearer tokens and (optionally) IPv4
//     addresses in lines and fields before they reach any sink;
//   - sink "stats" counts the events it receives per kind and origin and logs a summary.
package hello

import (
	"bytes"
	"context"
	"regexp"
	"sort"
	"sync"

	"github.com/tda-dev/tda/sdk"
)

// RedactSpec is the redact processor's config schema.
var RedactSpec = &sdk.Spec{
	Summary: "Masks personal data and secrets in lines and fields.",
	Fields: []sdk.Field{
		{Name: "mask", Type: sdk.TypeStringList, Default: []string{"email", "token"},
			Description: "What to mask: email, token (Bearer and api_key/token=... values), ipv4."},
		{Name: "replacement", Type: sdk.TypeString, Default: "[redacted]",
			Description: "What a masked value becomes."},
		{Name: "extra_pattern", Type: sdk.TypeString,
			Description: "An additional regular expression to mask."},
	},
	Example: `processor "redact" "pii" {
  mask = ["email", "token"]
}`,
}

var builtin = map[string]*regexp.Regexp{
	"email": regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
	"token": regexp.MustCompile(`(?i)(bearer\s+[A-Za-z0-9._~+/-]+=*|(?:api_key|token|password)=[^\s&"]+)`),
	"ipv4":  regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`),
}

// prefilter is a cheap test that a line may hold something to mask.
var prefilter = map[string][]byte{"email": []byte("@"), "token": nil, "ipv4": []byte(".")}

// Redact masks matches of the configured patterns.
type Redact struct {
	patterns []*regexp.Regexp
	needles  [][]byte
	repl     []byte
	replStr  string
}

// NewRedact builds the processor.
func NewRedact(conf *sdk.Config, _ sdk.Resources) (sdk.Processor, error) {
	r := &Redact{repl: []byte(conf.String("replacement")), replStr: conf.String("replacement")}
	for _, name := range conf.StringList("mask") {
		re, ok := builtin[name]
		if !ok {
			return nil, conf.Errorf("mask", "unknown mask %q; use email, token or ipv4", name)
		}
		r.patterns = append(r.patterns, re)
		r.needles = append(r.needles, prefilter[name])
	}
	if p := conf.String("extra_pattern"); p != "" {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, conf.Errorf("extra_pattern", "not a valid regular expression: %v", err)
		}
		r.patterns = append(r.patterns, re)
		r.needles = append(r.needles, nil)
	}
	return r, nil
}

// Process masks every event's line and fields.
func (r *Redact) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i := range events {
		e := &events[i]
		for j, re := range r.patterns {
			if n := r.needles[j]; n != nil && !bytes.Contains(e.Line, n) {
				continue
			}
			e.Line = re.ReplaceAllLiteral(e.Line, r.repl)
			for k, v := range e.Fields {
				e.Fields[k] = re.ReplaceAllLiteralString(v, r.replStr)
			}
		}
	}
	return events, nil
}

// Stats counts events per kind and origin.
type Stats struct {
	res    sdk.Resources
	mu     sync.Mutex
	counts map[string]int
}

// StatsSpec is the stats sink's config schema.
var StatsSpec = &sdk.Spec{Summary: "Counts events per kind and origin and logs the totals when it closes."}

// NewStats builds the sink.
func NewStats(_ *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	return &Stats{res: res, counts: map[string]int{}}, nil
}

// Write counts the batch.
func (s *Stats) Write(_ context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range b.Events {
		s.counts[e.Kind+" "+e.Origin]++
	}
	return nil
}

// Counts returns a copy of the counts.
func (s *Stats) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Close logs the totals.
func (s *Stats) Close(context.Context) error {
	counts := s.Counts()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.res.Logger.Info("events seen", "kind and origin", k, "count", counts[k])
	}
	return nil
}

// Components returns the plugin's components.
func Components() []sdk.Component {
	return []sdk.Component{
		sdk.ProcessorComponent("redact", RedactSpec, NewRedact),
		sdk.SinkComponent("stats", StatsSpec, NewStats),
	}
}
