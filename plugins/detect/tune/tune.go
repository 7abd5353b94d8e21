// Package tune answers "what thresholds make sense?" from a team's own logs: for every rule of
// a rules processor it replays the history through the same parsers and rule conditions,
// measures how many matching events each key has per window, and suggests a threshold with a
// safety margin above the normal level. `tda tune` prints its report.
package tune

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/tda-dev/tda/sdk/termsafe"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// DefaultMargin is the relative margin of a suggested threshold above the normal p99.
const DefaultMargin = 0.5

// maxLine bounds one input line; longer lines are cut (their start is what the parsers read).
const maxLine = 1 << 20

// Tuner collects the events of a history.
type Tuner struct {
	parser *parse.Parser
	rules  []*rules.Rule
	events []sdk.Event
	lines  int64
}

// New returns a tuner for rules, parsing lines with po.
func New(rs []*rules.Rule, po parse.Options) *Tuner {
	return &Tuner{parser: parse.New(po), rules: rs}
}

// AddLine parses one line of origin and keeps it when some rule matches its event type.
func (t *Tuner) AddLine(origin string, line []byte) {
	t.lines++
	ev := sdk.Event{Kind: sdk.KindLog, Origin: origin, Line: line}
	typ := t.parser.Apply(&ev)
	if typ == "" {
		return
	}
	for _, r := range t.rules {
		for _, m := range r.Match {
			if m == typ {
				ev.Line = bytes.Clone(line)
				t.events = append(t.events, ev)
				return
			}
		}
	}
}

// AddFile reads a log file line by line.
func (t *Tuner) AddFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.AddReader(path, f)
}

// AddReader reads lines from r as origin.
func (t *Tuner) AddReader(origin string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				if len(long) < maxLine {
					long = append(long, line...)
				}
			}
			line = long
		}
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > maxLine {
				line = line[:maxLine]
			}
			t.AddLine(origin, line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", origin, err)
		}
	}
}

// KeyMax is a key's largest window count.
type KeyMax struct {
	Key   string    `json:"key"`
	Max   int64     `json:"max"`
	Ended time.Time `json:"ended"` // the end of the window where it was reached
}

// RuleReport is the tuning result of one rule.
type RuleReport struct {
	Rule    string   `json:"rule"`
	Match   []string `json:"match"`
	GroupBy []string `json:"group_by,omitempty"`
	Window  string   `json:"window"`
	// Events counted (after where/unless and maintenance windows); Keys seen.
	Events int64 `json:"events"`
	Keys   int   `json:"keys"`
	// Windows is the number of (key, window) samples: the history cut into windows of the
	// rule's length, per key, keeping those with at least one event.
	Windows int64 `json:"windows"`
	// P50 and P99 of the counts per key and window at or below the current threshold (the
	// normal level; windows above it are the incidents already reported); Max is the largest
	// count any sliding window reached.
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
	// Threshold is the configured one and Incidents how many it raises over the history.
	Threshold int64 `json:"threshold"`
	Incidents int   `json:"incidents"`
	// Suggested is p99 plus the margin (at least p99+2); MarginAbs is Suggested-P99.
	Suggested            int64    `json:"suggested"`
	MarginAbs            int64    `json:"margin"`
	IncidentsAtSuggested int      `json:"incidents_at_suggested"`
	TopKeys              []KeyMax `json:"top_keys,omitempty"`
	Note                 string   `json:"note,omitempty"`
}

// Report is the tuning result of every rule.
type Report struct {
	Lines  int64        `json:"lines"`
	From   time.Time    `json:"from"`
	To     time.Time    `json:"to"`
	Margin float64      `json:"margin"`
	Rules  []RuleReport `json:"rules"`
}

// Report computes the per-rule distributions. margin is relative (0.5: suggested thresholds
// are 50% above the normal p99).
func (t *Tuner) Report(margin float64) Report {
	if margin < 0 {
		margin = DefaultMargin
	}
	evs := t.events
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	rep := Report{Lines: t.lines, Margin: margin}
	if len(evs) > 0 {
		rep.From, rep.To = evs[0].Time, evs[len(evs)-1].Time
	}
	for _, r := range t.rules {
		rep.Rules = append(rep.Rules, t.ruleReport(r, evs, margin))
	}
	return rep
}

func (t *Tuner) ruleReport(r *rules.Rule, evs []sdk.Event, margin float64) RuleReport {
	rr := RuleReport{Rule: r.Name, Match: r.Match, GroupBy: r.GroupBy, Window: sdk.FormatDuration(r.Window),
		Threshold: r.Threshold}
	w := int64(r.Window)
	type keyWin struct {
		times  []int64 // sliding window (times in it)
		bucket int64
		inBkt  int64
		max    int64
		maxAt  int64
	}
	keys := map[string]*keyWin{}
	var samples []int64
	flush := func(k *keyWin) {
		if k.inBkt > 0 {
			samples = append(samples, k.inBkt)
		}
	}
	matches := func(typ string) bool {
		for _, m := range r.Match {
			if m == typ {
				return true
			}
		}
		return false
	}
	for i := range evs {
		ev := &evs[i]
		if !matches(ev.Field(parse.FieldEvent)) {
			continue
		}
		if ok, _ := r.Counts(ev); !ok {
			continue
		}
		rr.Events++
		key := keyOf(r, ev)
		k := keys[key]
		if k == nil {
			k = &keyWin{bucket: math.MinInt64}
			keys[key] = k
		}
		tn := ev.Time.UnixNano()
		k.times = append(k.times, tn)
		drop := 0
		for drop < len(k.times) && k.times[drop] <= tn-w {
			drop++
		}
		k.times = k.times[drop:]
		if n := int64(len(k.times)); n > k.max {
			k.max, k.maxAt = n, tn
		}
		b := floorDiv(tn, w)
		if b != k.bucket {
			flush(k)
			k.bucket, k.inBkt = b, 0
		}
		k.inBkt++
	}
	names := make([]string, 0, len(keys))
	for name, k := range keys {
		flush(k)
		names = append(names, name)
		if k.max > rr.Max {
			rr.Max = k.max
		}
	}
	rr.Keys = len(keys)
	rr.Windows = int64(len(samples))
	var normal []int64
	for _, s := range samples {
		if s <= r.Threshold {
			normal = append(normal, s)
		}
	}
	sort.Slice(normal, func(i, j int) bool { return normal[i] < normal[j] })
	rr.P50, rr.P99 = percentile(normal, 0.50), percentile(normal, 0.99)
	sort.Slice(names, func(i, j int) bool {
		a, b := keys[names[i]], keys[names[j]]
		if a.max != b.max {
			return a.max > b.max
		}
		return names[i] < names[j]
	})
	for _, n := range names[:min(3, len(names))] {
		rr.TopKeys = append(rr.TopKeys, KeyMax{Key: n, Max: keys[n].max, Ended: time.Unix(0, keys[n].maxAt).UTC()})
	}
	rr.Incidents = incidents(r, r.Threshold, evs)
	switch {
	case r.Threshold == 0:
		rr.Suggested = 0
		rr.Note = "threshold 0 reports every event; nothing to tune"
	case len(normal) == 0:
		rr.Suggested = r.Threshold
		rr.Note = "no normal activity in the history; keep the threshold"
	default:
		rr.Suggested = max(int64(math.Ceil(float64(rr.P99)*(1+margin))), rr.P99+2)
		if len(normal) < 20 {
			rr.Note = fmt.Sprintf("only %d normal windows: collect a longer history", len(normal))
		}
	}
	if rr.Note == "" || len(normal) > 0 && r.Threshold > 0 {
		rr.MarginAbs = rr.Suggested - rr.P99
	}
	rr.IncidentsAtSuggested = incidents(r, rr.Suggested, evs)
	return rr
}

func keyOf(r *rules.Rule, ev *sdk.Event) string {
	if len(r.GroupBy) == 0 {
		return ""
	}
	parts := make([]string, len(r.GroupBy))
	for i, f := range r.GroupBy {
		switch f {
		case "origin":
			parts[i] = ev.Origin
		case "source":
			parts[i] = ev.Source
		default:
			if v := ev.Field(f); v != "" {
				parts[i] = v
			} else {
				parts[i] = "-"
			}
		}
	}
	return strings.Join(parts, "|")
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// incidents replays the history through the rule at a given threshold and counts incidents.
func incidents(r *rules.Rule, threshold int64, evs []sdk.Event) int {
	c := *r
	c.Threshold, c.Realert, c.Overridable = threshold, 0, false
	e := rules.NewEngine([]*rules.Rule{&c}, rules.Options{Instance: "tune"})
	n := 0
	var out []sdk.Event
	for i := range evs {
		ev := evs[i]
		out = e.Event(&ev, out[:0])
		for _, a := range out {
			if a.Alert != nil && a.Alert.State == sdk.StateFiring && a.Alert.Realert == 0 {
				n++
			}
		}
	}
	return n
}

// WriteTable prints the report as an aligned table.
func (rep Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "RULE\tWINDOW\tKEYS\tEVENTS\tP50\tP99\tMAX\tTHRESHOLD\tINCIDENTS\tSUGGESTED\tMARGIN\tINCIDENTS@SUGGESTED\tTOP KEY (MAX)\n")
	for _, r := range rep.Rules {
		top := ""
		if len(r.TopKeys) > 0 {
			k := r.TopKeys[0].Key
			if k == "" {
				k = "(all)"
			}
			top = fmt.Sprintf("%s (%d)", termsafe.String(k), r.TopKeys[0].Max)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t+%d\t%d\t%s\n", termsafe.String(r.Rule), r.Window, r.Keys, r.Events,
			r.P50, r.P99, r.Max, r.Threshold, r.Incidents, r.Suggested, r.MarginAbs, r.IncidentsAtSuggested, top)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d lines from %s to %s. P50/P99: events per key and window, over the windows at or below the\n"+
		"current threshold; MAX: the largest sliding-window count. Suggested = P99 + %.0f%% (at least P99+2).\n",
		rep.Lines, fmtTime(rep.From), fmtTime(rep.To), rep.Margin*100)
	for _, r := range rep.Rules {
		if r.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", termsafe.String(r.Rule), termsafe.String(r.Note))
		}
	}
	return nil
}

// WriteJSON prints the report as indented JSON.
func (rep Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
