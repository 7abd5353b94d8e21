package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Severity of a Diagnostic.
type Severity int

// Diagnostic severities.
const (
	SeverityError Severity = iota
	SeverityWarning
)

// Diagnostic is a config problem. Path addresses the attribute inside the component's block
// (["rule", "mass_password_reset", "window"]); the agent turns it into file:line:col. "#i"
// after a list attribute addresses its i-th element (["paths", "#1"]), and after an unlabelled
// repeated block its i-th block.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Path     []string
}

// Error implements error.
func (d *Diagnostic) Error() string {
	where := ""
	if len(d.Path) > 0 {
		where = strings.Join(d.Path, ".") + ": "
	}
	if d.Detail == "" {
		return where + d.Summary
	}
	return where + d.Summary + ": " + d.Detail
}

// Diagnostics is a list of Diagnostic.
type Diagnostics []*Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Err returns the diagnostics as one error, or nil when none is an error.
func (ds Diagnostics) Err() error {
	if !ds.HasErrors() {
		return nil
	}
	var msgs []string
	for _, d := range ds {
		if d.Severity == SeverityError {
			msgs = append(msgs, d.Error())
		}
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// Config is a decoded component block. Getters return the attribute's value, or its default
// when the attribute is absent. Asking for an undeclared name panics: that is a plugin bug.
type Config struct {
	spec   *Spec
	values map[string]any
	labels map[string]string
	path   []string
}

// ParseConfig decodes the JSON the agent sends (attributes by name; nested blocks as lists of
// objects with their labels as attributes) and checks it against spec. Plugins rarely call it:
// Serve and sdktest do.
func ParseConfig(spec *Spec, data []byte) (*Config, Diagnostics) {
	var raw map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, Diagnostics{{Severity: SeverityError, Summary: "Malformed config",
				Detail: err.Error()}}
		}
	}
	return parseObject(spec, raw, nil, nil)
}

func parseObject(spec *Spec, raw map[string]any, path []string, labels []string) (*Config, Diagnostics) {
	c := &Config{spec: spec, values: map[string]any{}, labels: map[string]string{}, path: path}
	var diags Diagnostics
	for i, l := range labels {
		if v, ok := raw[l].(string); ok {
			c.labels[l] = v
		} else {
			diags = append(diags, &Diagnostic{Severity: SeverityError, Summary: "Missing label",
				Detail: fmt.Sprintf("label %d (%s) is missing", i+1, l), Path: path})
		}
	}
	known := map[string]bool{}
	for _, l := range labels {
		known[l] = true
	}
	for _, f := range spec.Fields {
		known[f.Name] = true
		v, present := raw[f.Name]
		if !present || v == nil {
			if f.Required {
				diags = append(diags, &Diagnostic{Severity: SeverityError,
					Summary: "Missing required argument",
					Detail:  fmt.Sprintf("The argument %q is required.", f.Name), Path: path})
			}
			continue
		}
		nv, err := normalize(f.Type, v)
		if err != nil {
			diags = append(diags, &Diagnostic{Severity: SeverityError,
				Summary: "Incorrect attribute value type", Detail: err.Error(),
				Path: appendPath(path, f.Name)})
			continue
		}
		if d := f.checkValue(nv); d != nil {
			d.Path = appendPath(path, f.Name)
			diags = append(diags, d)
			continue
		}
		c.values[f.Name] = nv
	}
	for _, b := range spec.Blocks {
		known[b.Name] = true
		v, present := raw[b.Name]
		var items []any
		if present && v != nil {
			switch t := v.(type) {
			case []any:
				items = t
			case map[string]any:
				items = []any{t}
			default:
				diags = append(diags, &Diagnostic{Severity: SeverityError,
					Summary: "Malformed block", Detail: fmt.Sprintf("%s must be a block", b.Name),
					Path: appendPath(path, b.Name)})
				continue
			}
		}
		if b.Required && len(items) == 0 {
			diags = append(diags, &Diagnostic{Severity: SeverityError, Summary: "Missing required block",
				Detail: fmt.Sprintf("At least one %q block is required.", b.Name), Path: path})
		}
		if !b.Repeated && len(items) > 1 {
			diags = append(diags, &Diagnostic{Severity: SeverityError, Summary: "Duplicate block",
				Detail: fmt.Sprintf("Only one %q block is allowed.", b.Name), Path: appendPath(path, b.Name)})
		}
		var children []*Config
		seenLabels := map[string]bool{}
		for i, it := range items {
			obj, ok := it.(map[string]any)
			if !ok {
				diags = append(diags, &Diagnostic{Severity: SeverityError, Summary: "Malformed block",
					Path: appendPath(path, b.Name)})
				continue
			}
			childPath := appendPath(path, b.Name)
			if len(b.Labels) > 0 {
				var ls []string
				for _, l := range b.Labels {
					s, _ := obj[l].(string)
					ls = append(ls, s)
				}
				key := strings.Join(ls, "\x00")
				childPath = append(childPath, ls...)
				if seenLabels[key] {
					diags = append(diags, &Diagnostic{Severity: SeverityError, Summary: "Duplicate block",
						Detail: fmt.Sprintf("A %s block labelled %s is already defined.", b.Name,
							quoteList(ls)), Path: childPath})
				}
				seenLabels[key] = true
			} else if b.Repeated {
				childPath = append(childPath, fmt.Sprintf("#%d", i))
			}
			child, cd := parseObject(b.Spec, obj, childPath, b.Labels)
			diags = append(diags, cd...)
			if child != nil {
				children = append(children, child)
			}
		}
		c.values[b.Name] = children
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		var names []string
		for n := range known {
			names = append(names, n)
		}
		diags = append(diags, &Diagnostic{Severity: SeverityError, Summary: "Unsupported argument",
			Detail: fmt.Sprintf("An argument named %q is not expected here.%s", k, suggest(k, names)),
			Path:   appendPath(path, k)})
	}
	return c, diags
}

func appendPath(path []string, elems ...string) []string {
	p := make([]string, 0, len(path)+len(elems))
	p = append(p, path...)
	return append(p, elems...)
}

// normalize converts a JSON-decoded value (or a Go default) to the canonical Go type of t:
// string, int64, float64, bool, []string, []int64 or map[string]string.
func normalize(t Type, v any) (any, error) {
	switch t {
	case TypeString, TypeDuration:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeInt:
		if n, ok := toInt(v); ok {
			return n, nil
		}
	case TypeFloat:
		if f, ok := toFloat(v); ok {
			return f, nil
		}
	case TypeStringList:
		switch l := v.(type) {
		case []string:
			return append([]string(nil), l...), nil
		case []any:
			out := make([]string, 0, len(l))
			for _, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("expected a list of strings")
				}
				out = append(out, s)
			}
			return out, nil
		}
	case TypeIntList:
		switch l := v.(type) {
		case []int64:
			return append([]int64(nil), l...), nil
		case []int:
			out := make([]int64, len(l))
			for i, e := range l {
				out[i] = int64(e)
			}
			return out, nil
		case []any:
			out := make([]int64, 0, len(l))
			for _, e := range l {
				n, ok := toInt(e)
				if !ok {
					return nil, fmt.Errorf("expected a list of whole numbers")
				}
				out = append(out, n)
			}
			return out, nil
		}
	case TypeStringMap:
		switch m := v.(type) {
		case map[string]string:
			out := make(map[string]string, len(m))
			for k, e := range m {
				out[k] = e
			}
			return out, nil
		case map[string]any:
			out := make(map[string]string, len(m))
			for k, e := range m {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("expected a map of strings")
				}
				out[k] = s
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s is required; got %s", typeNoun(t), describeValue(v))
}

func typeNoun(t Type) string {
	switch t {
	case TypeInt:
		return "a whole number"
	case TypeFloat:
		return "a number"
	case TypeBool:
		return "true or false"
	case TypeString:
		return "a string"
	case TypeDuration:
		return "a duration string such as \"60s\""
	case TypeStringList:
		return "a list of strings"
	case TypeIntList:
		return "a list of whole numbers"
	case TypeStringMap:
		return "a map of strings"
	}
	return string(t)
}

func describeValue(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%v", x)
	}
}

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func (c *Config) value(name string, t Type) (any, bool) {
	f, ok := c.spec.FieldByName(name)
	if !ok {
		panic(fmt.Sprintf("sdk: config has no field %q", name))
	}
	if f.Type != t && !(t == TypeString && f.Type == TypeDuration) {
		panic(fmt.Sprintf("sdk: field %q is %s, not %s", name, f.Type, t))
	}
	if v, ok := c.values[name]; ok {
		return v, true
	}
	if f.Default != nil {
		v, _ := normalize(f.Type, f.Default)
		return v, true
	}
	return nil, false
}

// Has reports whether the attribute or block was written in the config.
func (c *Config) Has(name string) bool {
	v, ok := c.values[name]
	if b, isBlocks := v.([]*Config); isBlocks {
		return len(b) > 0
	}
	return ok
}

// String returns a string attribute.
func (c *Config) String(name string) string {
	v, _ := c.value(name, TypeString)
	s, _ := v.(string)
	return s
}

// Int returns an int attribute.
func (c *Config) Int(name string) int64 {
	v, _ := c.value(name, TypeInt)
	n, _ := v.(int64)
	return n
}

// Float returns a float attribute.
func (c *Config) Float(name string) float64 {
	v, _ := c.value(name, TypeFloat)
	f, _ := v.(float64)
	return f
}

// Bool returns a bool attribute.
func (c *Config) Bool(name string) bool {
	v, _ := c.value(name, TypeBool)
	b, _ := v.(bool)
	return b
}

// Duration returns a duration attribute (validated when the config was parsed).
func (c *Config) Duration(name string) time.Duration {
	v, _ := c.value(name, TypeDuration)
	s, _ := v.(string)
	if s == "" {
		return 0
	}
	d, _ := ParseDuration(s)
	return d
}

// StringList returns a list(string) attribute.
func (c *Config) StringList(name string) []string {
	v, _ := c.value(name, TypeStringList)
	l, _ := v.([]string)
	return l
}

// IntList returns a list(int) attribute.
func (c *Config) IntList(name string) []int64 {
	v, _ := c.value(name, TypeIntList)
	l, _ := v.([]int64)
	return l
}

// StringMap returns a map(string) attribute.
func (c *Config) StringMap(name string) map[string]string {
	v, _ := c.value(name, TypeStringMap)
	m, _ := v.(map[string]string)
	return m
}

// Blocks returns every nested block of that name, in config order.
func (c *Config) Blocks(name string) []*Config {
	if _, ok := c.spec.BlockByName(name); !ok {
		panic(fmt.Sprintf("sdk: config has no block %q", name))
	}
	b, _ := c.values[name].([]*Config)
	return b
}

// Block returns the single nested block of that name, or nil when absent.
func (c *Config) Block(name string) *Config {
	if b := c.Blocks(name); len(b) > 0 {
		return b[0]
	}
	return nil
}

// Label returns the value of the block label of that name.
func (c *Config) Label(name string) string {
	return c.labels[name]
}

// Path returns the address of this block inside the component's config (empty at the top).
func (c *Config) Path() []string {
	return append([]string(nil), c.path...)
}

// Errorf returns a config error positioned at the attribute field of this block (or at the
// block itself when field is ""). Return it from a component constructor and the agent reports
// it with the file, line and column of that attribute.
func (c *Config) Errorf(field, format string, args ...any) error {
	p := c.Path()
	if field != "" {
		p = append(p, field)
	}
	return &Diagnostic{Severity: SeverityError, Summary: fmt.Sprintf(format, args...), Path: p}
}
