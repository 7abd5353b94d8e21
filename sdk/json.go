package sdk

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TimeFormat is how tda writes times: RFC 3339 in UTC with nanoseconds.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime formats t with TimeFormat in UTC; the zero time gives "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// MarshalJSON encodes the event in its canonical form (see AppendJSON).
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(nil), nil
}

// AppendJSON appends the event's canonical JSON object, without a newline.
//
// Log-like events have the keys ts, kind, source, origin, stream, line and fields. Alerts have
// ts, kind, rule, severity, state, key, count, threshold, window, first_seen, last_seen,
// origin, source, excerpt, fingerprint, suppressed_by and override_reason when suppressed,
// explanation, and realert on reminders. Invalid UTF-8 becomes U+FFFD, as JSON requires.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"ts":`...)
	b = appendJSONTime(b, e.Time)
	b = append(b, `,"kind":`...)
	b = AppendJSONString(b, e.Kind)
	if e.Kind == KindAlert && e.Alert != nil {
		return e.appendAlert(b)
	}
	b = append(b, `,"source":`...)
	b = AppendJSONString(b, e.Source)
	b = append(b, `,"origin":`...)
	b = AppendJSONString(b, e.Origin)
	b = append(b, `,"stream":`...)
	b = AppendJSONString(b, e.Stream)
	b = append(b, `,"line":`...)
	b = appendJSONBytes(b, e.Line)
	b = append(b, `,"fields":{`...)
	for i, k := range e.SortedFieldNames() {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, k)
		b = append(b, ':')
		b = AppendJSONString(b, e.Fields[k])
	}
	return append(b, "}}"...)
}

func (e *Event) appendAlert(b []byte) []byte {
	a := e.Alert
	b = append(b, `,"rule":`...)
	b = AppendJSONString(b, a.Rule)
	b = append(b, `,"severity":`...)
	b = AppendJSONString(b, a.Severity)
	b = append(b, `,"state":`...)
	b = AppendJSONString(b, a.State)
	b = append(b, `,"key":`...)
	b = AppendJSONString(b, a.Key)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, a.Count, 10)
	b = append(b, `,"threshold":`...)
	b = strconv.AppendInt(b, a.Threshold, 10)
	b = append(b, `,"window":`...)
	b = AppendJSONString(b, FormatDuration(a.Window))
	b = append(b, `,"first_seen":`...)
	b = appendJSONTime(b, a.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = appendJSONTime(b, a.LastSeen)
	b = append(b, `,"origin":`...)
	b = AppendJSONString(b, e.Origin)
	b = append(b, `,"source":`...)
	b = AppendJSONString(b, e.Source)
	b = append(b, `,"excerpt":[`...)
	for i, l := range a.Excerpt {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, l)
	}
	b = append(b, `],"fingerprint":`...)
	b = AppendJSONString(b, a.Fingerprint)
	if a.State == StateSuppressed || a.SuppressedBy != "" || a.OverrideReason != "" {
		b = append(b, `,"suppressed_by":`...)
		b = AppendJSONString(b, a.SuppressedBy)
		b = append(b, `,"override_reason":`...)
		b = AppendJSONString(b, a.OverrideReason)
	}
	b = append(b, `,"explanation":`...)
	b = AppendJSONString(b, a.Explanation)
	if a.Realert > 0 {
		b = append(b, `,"realert":`...)
		b = strconv.AppendInt(b, int64(a.Realert), 10)
	}
	return append(b, '}')
}

func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, `null`...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 becomes U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendJSONBytes(b []byte, s []byte) []byte {
	// The conversion does not allocate: the compiler recognises the read-only use.
	return AppendJSONString(b, unsafeString(s))
}

// eventJSON mirrors the canonical JSON for decoding.
type eventJSON struct {
	TS             *string           `json:"ts"`
	Kind           string            `json:"kind"`
	Source         string            `json:"source"`
	Origin         string            `json:"origin"`
	Stream         string            `json:"stream"`
	Line           string            `json:"line"`
	Fields         map[string]string `json:"fields"`
	Rule           string            `json:"rule"`
	Severity       string            `json:"severity"`
	State          string            `json:"state"`
	Key            string            `json:"key"`
	Count          int64             `json:"count"`
	Threshold      int64             `json:"threshold"`
	Window         string            `json:"window"`
	FirstSeen      *string           `json:"first_seen"`
	LastSeen       *string           `json:"last_seen"`
	Excerpt        []string          `json:"excerpt"`
	Fingerprint    string            `json:"fingerprint"`
	SuppressedBy   string            `json:"suppressed_by"`
	OverrideReason string            `json:"override_reason"`
	Explanation    string            `json:"explanation"`
	Realert        int               `json:"realert"`
}

// UnmarshalJSON decodes the canonical JSON form written by AppendJSON.
func (e *Event) UnmarshalJSON(data []byte) error {
	var j eventJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	parse := func(p *string, what string) (time.Time, error) {
		if p == nil || *p == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, *p)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", what, err)
		}
		return t.UTC(), nil
	}
	ts, err := parse(j.TS, "ts")
	if err != nil {
		return err
	}
	*e = Event{Time: ts, Kind: j.Kind, Source: j.Source, Origin: j.Origin, Stream: j.Stream, Fields: j.Fields}
	if j.Line != "" {
		e.Line = []byte(j.Line)
	}
	if j.Kind != KindAlert {
		return nil
	}
	a := &Alert{Rule: j.Rule, Severity: j.Severity, State: j.State, Key: j.Key, Count: j.Count,
		Threshold: j.Threshold, Excerpt: j.Excerpt, Fingerprint: j.Fingerprint,
		SuppressedBy: j.SuppressedBy, OverrideReason: j.OverrideReason,
		Explanation: j.Explanation, Realert: j.Realert}
	if j.Window != "" {
		if a.Window, err = ParseDuration(j.Window); err != nil {
			return fmt.Errorf("window: %w", err)
		}
	}
	if a.FirstSeen, err = parse(j.FirstSeen, "first_seen"); err != nil {
		return err
	}
	if a.LastSeen, err = parse(j.LastSeen, "last_seen"); err != nil {
		return err
	}
	e.Alert = a
	return nil
}

// ParseDuration parses a Go duration ("90s", "1h30m") and also accepts days ("7d", "1d12h")
// and weeks ("2w").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration; write e.g. \"60s\", \"15m\" or \"7d\"")
	}
	var total time.Duration
	rest := s
	for _, unit := range []struct {
		suffix string
		size   time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		i := strings.Index(rest, unit.suffix)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q; write e.g. \"60s\", \"15m\" or \"7d\"", s)
		}
		total += time.Duration(n) * unit.size
		rest = rest[i+1:]
	}
	if rest != "" {
		if rest != s && (rest[0] == '-' || rest[0] == '+') {
			return 0, fmt.Errorf("invalid duration %q; write e.g. \"60s\", \"15m\" or \"7d\"", s)
		}
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q; write e.g. \"60s\", \"15m\" or \"7d\"", s)
		}
		total += d
	}
	return total, nil
}

// FormatDuration writes d compactly: "60s" stays "1m", "90s" is "1m30s", "36h" is "1d12h".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	if days := d / (24 * time.Hour); days > 0 && d%time.Second == 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('d')
		d -= days * 24 * time.Hour
		if d == 0 {
			return b.String()
		}
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	b.WriteString(s)
	return b.String()
}
