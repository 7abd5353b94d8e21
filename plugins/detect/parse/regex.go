package parse

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"time"
)

// Custom is a user-defined parser: a regular expression with named groups. Every named group
// that matched becomes a field; a group named "time" is the event time; a group named "event"
// gives the event type when Event is empty.
type Custom struct {
	Name string
	// Event is the event type a match yields (may be empty when the regex has an "event" group).
	Event string
	// TimeLayout is the Go layout of the "time" group; empty means RFC 3339, the access-log
	// forms or a Unix epoch.
	TimeLayout string

	re        *regexp.Regexp
	literals  [][]byte
	timeIdx   int
	eventIdx  int
	groupIdxs []int
	groups    []string
}

// NewCustom compiles a user parser. contains lists extra literal strings a line must hold
// before the regex runs; a literal the regex itself requires is added automatically, so most
// lines are rejected by a byte search instead of the regex engine.
func NewCustom(name, expr, event string, contains []string, timeLayout string) (*Custom, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regex: %w", err)
	}
	c := &Custom{Name: name, Event: event, TimeLayout: timeLayout, re: re, timeIdx: -1, eventIdx: -1}
	for i, g := range re.SubexpNames() {
		switch g {
		case "":
		case "time":
			c.timeIdx = i
		case FieldEvent:
			c.eventIdx = i
		default:
			c.groupIdxs = append(c.groupIdxs, i)
			c.groups = append(c.groups, g)
		}
	}
	if event == "" && c.eventIdx < 0 {
		return nil, fmt.Errorf("parser %q yields no event type: set event or name a group (?P<event>...)", name)
	}
	for _, s := range contains {
		if s != "" {
			c.literals = append(c.literals, []byte(s))
		}
	}
	if lit := requiredLiteral(expr); len(lit) >= 3 {
		c.literals = append(c.literals, []byte(lit))
	}
	return c, nil
}

// requiredLiteral returns the longest case-sensitive literal that every match must contain,
// or "".
func requiredLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	best := ""
	consider := func(r *syntax.Regexp) {
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 && len(string(r.Rune)) > len(best) {
			best = string(r.Rune)
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		consider(re)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			consider(sub)
			if sub.Op == syntax.OpCapture && len(sub.Sub) == 1 {
				consider(sub.Sub[0])
			}
		}
	case syntax.OpCapture:
		if len(re.Sub) == 1 {
			consider(re.Sub[0])
		}
	}
	return best
}

// match runs the parser on line. On a match it fills r and returns the time the line gives (if
// any).
func (c *Custom) match(line []byte, loc *time.Location, r *result) (time.Time, bool, bool) {
	for _, l := range c.literals {
		if !bytes.Contains(line, l) {
			return time.Time{}, false, false
		}
	}
	m := c.re.FindSubmatchIndex(line)
	if m == nil {
		return time.Time{}, false, false
	}
	group := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return clip(string(line[m[2*i]:m[2*i+1]])), true
	}
	ev := c.Event
	if c.eventIdx >= 0 {
		if v, ok := group(c.eventIdx); ok && v != "" {
			ev = v
		}
	}
	if ev == "" {
		return time.Time{}, false, false
	}
	r.event, r.via, r.format = ev, ViaRegex, c.Name
	for k, i := range c.groupIdxs {
		if v, ok := group(i); ok {
			r.set(c.groups[k], v)
		}
	}
	if c.timeIdx >= 0 {
		if v, ok := group(c.timeIdx); ok {
			if c.TimeLayout != "" {
				if t, err := time.ParseInLocation(c.TimeLayout, v, loc); err == nil {
					return t.UTC(), true, true
				}
			} else if t, ok := ParseAny(v, loc); ok {
				return t, true, true
			}
		}
	}
	return time.Time{}, false, true
}
