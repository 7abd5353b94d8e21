package sdk

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unsafe"
)

// Type is the type of a config attribute.
type Type string

// Attribute types. Durations are strings such as "60s", "15m" or "7d".
const (
	TypeString     Type = "string"
	TypeInt        Type = "int"
	TypeFloat      Type = "float"
	TypeBool       Type = "bool"
	TypeDuration   Type = "duration"
	TypeStringList Type = "list(string)"
	TypeIntList    Type = "list(int)"
	TypeStringMap  Type = "map(string)"
)

// Spec is a component's config schema. The agent decodes the component's HCL block with it, so
// a wrong name, a wrong type or a missing attribute is reported with file:line:col before the
// plugin starts; `tda plugins -docs` prints it as reference documentation.
type Spec struct {
	Summary     string  `json:"summary,omitempty"`
	Description string  `json:"description,omitempty"`
	Fields      []Field `json:"fields,omitempty"`
	Blocks      []Block `json:"blocks,omitempty"`
	// Example is a complete HCL block showing typical use.
	Example string `json:"example,omitempty"`
	// AuditTrail names the string field that holds the path of the file a sink appends the
	// audit trail to: every event it takes (alerts, incident updates, audit records) as one
	// JSON line (Event.MarshalJSON), the file renamed to path.1, path.2, ... when it rotates.
	// The agent reads the incidents, the panel's alerts and the API's from that file; a sink
	// that writes no such file leaves it empty. The http block's audit_trail names the sink
	// to read when several could be.
	AuditTrail string `json:"audit_trail,omitempty"`
}

// Field is one attribute of a block.
type Field struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	// Default is used when the attribute is absent. Durations take a string.
	Default any `json:"default,omitempty"`
	// Enum lists the allowed values of a string attribute.
	Enum []string `json:"enum,omitempty"`
	// Min is the smallest value of a duration ("100ms"): give one to every duration that
	// drives a loop, so that a typo such as "1ns" is a config error instead of a busy core.
	Min string `json:"min,omitempty"`
	// Sensitive values (tokens, passwords) are never logged or shown.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Block is a nested block, e.g. `rule "mass_password_reset" { ... }`.
type Block struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Labels names the block's labels; a labelled block must have exactly these.
	Labels []string `json:"labels,omitempty"`
	// Repeated allows the block more than once.
	Repeated bool `json:"repeated,omitempty"`
	// Required demands at least one.
	Required bool  `json:"required,omitempty"`
	Spec     *Spec `json:"spec"`
}

// ReservedNames are attribute and block names the agent handles itself on every block; a
// component spec must not use them.
var ReservedNames = map[string]bool{
	"fallback": true, "fallback_after": true, "kinds": true, "queue": true, "batch": true,
	"retry": true, "plugin": true, "group_interval": true, "call_timeout": true, "max_attempts": true,
	"buffer": true, "isolate": true,
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Check reports mistakes in the spec itself: bad or duplicate names, defaults of the wrong
// type, labels that collide with attributes. Serve refuses to start with a broken spec.
func (s *Spec) Check() error {
	if err := s.check(nil, true); err != nil {
		return err
	}
	if s.AuditTrail != "" {
		if f, ok := s.FieldByName(s.AuditTrail); !ok || f.Type != TypeString {
			return fmt.Errorf("audit_trail %q: name a string field of the spec", s.AuditTrail)
		}
	}
	return nil
}

func (s *Spec) check(path []string, top bool) error {
	seen := map[string]bool{}
	for _, f := range s.Fields {
		where := strings.Join(append(path, f.Name), ".")
		if !nameRE.MatchString(f.Name) {
			return fmt.Errorf("field %q: names are lower_snake_case", where)
		}
		if top && ReservedNames[f.Name] {
			return fmt.Errorf("field %q: the name is reserved for the agent", where)
		}
		if seen[f.Name] {
			return fmt.Errorf("field %q declared twice", where)
		}
		seen[f.Name] = true
		switch f.Type {
		case TypeString, TypeInt, TypeFloat, TypeBool, TypeDuration, TypeStringList, TypeIntList, TypeStringMap:
		default:
			return fmt.Errorf("field %q: unknown type %q", where, f.Type)
		}
		if f.Min != "" {
			if f.Type != TypeDuration {
				return fmt.Errorf("field %q: min is for durations", where)
			}
			if _, err := ParseDuration(f.Min); err != nil {
				return fmt.Errorf("field %q: min: %v", where, err)
			}
		}
		if f.Required && f.Default != nil {
			return fmt.Errorf("field %q: a required field has no default", where)
		}
		if f.Default != nil {
			if _, err := normalize(f.Type, f.Default); err != nil {
				return fmt.Errorf("field %q: default: %w", where, err)
			}
			if err := f.checkValue(f.Default); err != nil {
				return fmt.Errorf("field %q: default: %s", where, err.Summary)
			}
		}
	}
	for _, b := range s.Blocks {
		where := strings.Join(append(path, b.Name), ".")
		if !nameRE.MatchString(b.Name) {
			return fmt.Errorf("block %q: names are lower_snake_case", where)
		}
		if top && ReservedNames[b.Name] {
			return fmt.Errorf("block %q: the name is reserved for the agent", where)
		}
		if seen[b.Name] {
			return fmt.Errorf("block %q declared twice", where)
		}
		seen[b.Name] = true
		if b.Spec == nil {
			return fmt.Errorf("block %q has no spec", where)
		}
		for _, l := range b.Labels {
			for _, f := range b.Spec.Fields {
				if f.Name == l {
					return fmt.Errorf("block %q: label %q collides with a field", where, l)
				}
			}
		}
		if err := b.Spec.check(append(path, b.Name), false); err != nil {
			return err
		}
	}
	return nil
}

// FieldByName returns the named field.
func (s *Spec) FieldByName(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// BlockByName returns the named block.
func (s *Spec) BlockByName(name string) (Block, bool) {
	for _, b := range s.Blocks {
		if b.Name == name {
			return b, true
		}
	}
	return Block{}, false
}

// checkValue validates a value already of the right Go type: enum membership and durations.
func (f Field) checkValue(v any) *Diagnostic {
	switch f.Type {
	case TypeDuration:
		s, _ := v.(string)
		d, err := ParseDuration(s)
		if err != nil {
			return &Diagnostic{Severity: SeverityError, Summary: "Invalid duration",
				Detail: err.Error(), Path: []string{f.Name}}
		}
		if f.Min != "" {
			if least, err := ParseDuration(f.Min); err == nil && d < least {
				return &Diagnostic{Severity: SeverityError, Summary: "Duration too short",
					Detail: fmt.Sprintf("%s must be at least %s, not %s: it drives a loop that would otherwise "+
						"keep a core busy.", f.Name, f.Min, s), Path: []string{f.Name}}
			}
		}
	case TypeString:
		if len(f.Enum) > 0 {
			s, _ := v.(string)
			for _, e := range f.Enum {
				if s == e {
					return nil
				}
			}
			return &Diagnostic{Severity: SeverityError, Summary: "Unsupported value",
				Detail: fmt.Sprintf("%s must be one of %s, not %q.%s", f.Name,
					quoteList(f.Enum), s, suggest(s, f.Enum)), Path: []string{f.Name}}
		}
	}
	return nil
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// suggest returns ` Did you mean "x"?` for the nearest candidate, or "".
func suggest(given string, candidates []string) string {
	if s := Suggest(given, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// Suggest returns the candidate nearest to given when it is close enough to be a likely typo.
func Suggest(given string, candidates []string) string {
	best, bestDist := "", 1<<30
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein(strings.ToLower(given), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > 2+len(given)/5 || bestDist >= len(given) {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unsafeString views b as a string without copying; b must not change while it is used.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
