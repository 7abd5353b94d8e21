package repair

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Value is a column value as text, for comparing and showing; the bytes the driver read are
// kept apart and are what a repair writes.
type Value struct {
	Text string `json:"text"`
	Null bool   `json:"null,omitempty"`
}

func (v Value) String() string {
	if v.Null {
		return "NULL"
	}
	return v.Text
}

// valueOf returns the canonical text of a value read by database/sql: both drivers give
// int64, float64, bool, string, []byte or time.Time; times are compared in UTC.
func valueOf(v any) Value {
	switch x := v.(type) {
	case nil:
		return Value{Null: true}
	case []byte:
		return Value{Text: string(x)}
	case string:
		return Value{Text: x}
	case time.Time:
		return Value{Text: x.UTC().Format(time.RFC3339Nano)}
	case int64:
		return Value{Text: strconv.FormatInt(x, 10)}
	case float64:
		return Value{Text: strconv.FormatFloat(x, 'g', -1, 64)}
	case bool:
		return Value{Text: strconv.FormatBool(x)}
	}
	return Value{Text: fmt.Sprint(v)}
}

// timeOf reads a timestamp column's value: a time.Time from either driver, or text in one of
// the forms databases print timestamps in.
func timeOf(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), true
	case []byte:
		return parseTimeText(string(x))
	case string:
		return parseTimeText(x)
	}
	return time.Time{}, false
}

func parseTimeText(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// keyLess orders keys numerically when both are integers, else as text.
func keyLess(a, b string) bool {
	ai, aerr := strconv.ParseInt(a, 10, 64)
	bi, berr := strconv.ParseInt(b, 10, 64)
	if aerr == nil && berr == nil {
		return ai < bi
	}
	if (aerr == nil) != (berr == nil) {
		return aerr == nil
	}
	return a < b
}
