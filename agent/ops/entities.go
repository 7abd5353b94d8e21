package ops

import (
	"encoding/csv"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxEntities bounds the distinct values kept per incident, over all fields; a value seen
// beyond it is counted in Dropped and sets Truncated.
const MaxEntities = 10000

// maxEntityValue bounds one value (longer ones are cut at a rune boundary).
const maxEntityValue = 256

// Entities are the distinct values of the fields that name who or what an incident touched
// (user_id, username, actor, ip, table, revision, and the rule's key), collected from the
// incident's events.
type Entities struct {
	// Fields maps a field name to its values, sorted.
	Fields map[string][]string `json:"fields"`
	// Total is the number of values kept over all fields (at most MaxEntities).
	Total int `json:"total"`
	// Truncated: more values were seen than kept (by the rules engine or here); Dropped
	// counts those dropped here.
	Truncated bool `json:"truncated"`
	Dropped   int  `json:"dropped,omitempty"`
}

// entitySet accumulates Entities within MaxEntities.
type entitySet struct {
	fields    map[string]map[string]struct{}
	total     int
	truncated bool
	dropped   int
}

func newEntitySet(e Entities) *entitySet {
	s := &entitySet{fields: map[string]map[string]struct{}{}, truncated: e.Truncated, dropped: e.Dropped}
	for f, vals := range e.Fields {
		s.add(f, vals)
	}
	return s
}

// add merges values of a field; it reports whether anything was new.
func (s *entitySet) add(field string, vals []string) bool {
	field = cutValue(field, 64)
	if field == "" {
		return false
	}
	changed := false
	for _, v := range vals {
		v = cutValue(v, maxEntityValue)
		if v == "" || v == "-" {
			continue
		}
		set := s.fields[field]
		if _, ok := set[v]; ok {
			continue
		}
		if s.total >= MaxEntities {
			s.truncated = true
			s.dropped++
			changed = true
			continue
		}
		if set == nil {
			set = map[string]struct{}{}
			s.fields[field] = set
		}
		set[v] = struct{}{}
		s.total++
		changed = true
	}
	return changed
}

func (s *entitySet) entities() Entities {
	e := Entities{Fields: make(map[string][]string, len(s.fields)), Total: s.total,
		Truncated: s.truncated, Dropped: s.dropped}
	for f, set := range s.fields {
		vals := make([]string, 0, len(set))
		for v := range set {
			vals = append(vals, v)
		}
		sort.Slice(vals, func(i, j int) bool { return naturalLess(vals[i], vals[j]) })
		e.Fields[f] = vals
	}
	return e
}

func (s *entitySet) counts() map[string]int {
	if len(s.fields) == 0 {
		return nil
	}
	m := make(map[string]int, len(s.fields))
	for f, set := range s.fields {
		m[f] = len(set)
	}
	return m
}

// cutValue bounds s to n bytes without splitting a rune, and makes it valid UTF-8.
func cutValue(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// WriteCSV writes the entities as CSV rows "field,value", sorted by field then value, after a
// header row. A value a spreadsheet would run as a formula is prefixed with a quote.
func (e Entities) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"field", "value"}); err != nil {
		return err
	}
	fields := make([]string, 0, len(e.Fields))
	for f := range e.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		for _, v := range e.Fields[f] {
			if err := cw.Write([]string{csvSafe(f), csvSafe(v)}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a cell from being read as a formula (values come from log lines).
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}

// naturalLess orders numbers by value (7 before 11) and everything else as text, numbers first.
func naturalLess(a, b string) bool {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return len(a) < len(b)
		}
	case na != nb:
		return na
	}
	return a < b
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
