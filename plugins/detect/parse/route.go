package parse

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FieldRoute names the route pattern that gave an access line its meaning.
const FieldRoute = "route"

// NoEvent is the event of a route whose matching lines are no event at all: the built-in
// heuristics are then not consulted (`POST /nodes/register` answered 201 is not a sign-up).
const NoEvent = "none"

// maxRouteSegs bounds a route pattern and the path segments compared with it.
const maxRouteSegs = 32

type routeSeg struct {
	lit     string // literal segment
	capture string // ":name": the segment, captured as field name
	any     bool   // "*": any one segment
	rest    bool   // "**" (last): any number of segments, none included
}

// Route declares what an access line means when an access line alone cannot say it: a failed
// form login re-rendered with 200, endpoints named in another language. Routes are checked in
// order before the built-in heuristics; the first that matches decides.
type Route struct {
	// Methods the route matches (upper case); empty matches every method.
	Methods []string
	// Pattern is the path pattern: literal segments, `:name` (one segment, captured as field
	// name), `*` (one segment) and a final `**` (the rest of the path, maybe empty).
	Pattern string
	// Status the route matches; empty matches every status.
	Status []int
	// Event is the event type a matching line yields, or NoEvent.
	Event string
	// Fields are set on the event: a literal value, or ":name" for a capture of the pattern.
	Fields map[string]string

	segs   []routeSeg
	fields [][2]string // sorted Fields
}

// RouteError is a route that cannot be compiled; Attr names the attribute at fault.
type RouteError struct {
	Attr string
	Msg  string
}

func (e *RouteError) Error() string { return e.Msg }

// NewRoute compiles a route. method may name several methods separated by | ("POST|PUT");
// "" or "*" matches any.
func NewRoute(method, pattern string, status []int, event string, fields map[string]string) (*Route, error) {
	r := &Route{Pattern: pattern, Event: event, Fields: fields}
	for _, m := range strings.Split(method, "|") {
		m = strings.ToUpper(strings.TrimSpace(m))
		switch {
		case m == "" || m == "*":
			r.Methods = nil
		case !isMethod([]byte(m)) || len(m) > 16:
			return nil, &RouteError{"method", fmt.Sprintf("%q is not an HTTP method: write e.g. \"POST\" or \"POST|PUT\"", m)}
		default:
			r.Methods = append(r.Methods, m)
		}
		if m == "" || m == "*" {
			break
		}
	}
	if !strings.HasPrefix(pattern, "/") {
		return nil, &RouteError{"path", fmt.Sprintf("path %q must start with /: write e.g. \"/users/:id/delete\"", pattern)}
	}
	captures := map[string]bool{}
	parts := strings.Split(strings.Trim(pattern, "/"), "/")
	if pattern == "/" {
		parts = nil
	}
	if len(parts) > maxRouteSegs {
		return nil, &RouteError{"path", fmt.Sprintf("path has %d segments; at most %d", len(parts), maxRouteSegs)}
	}
	for i, s := range parts {
		switch {
		case s == "":
			return nil, &RouteError{"path", fmt.Sprintf("path %q has an empty segment (//)", pattern)}
		case s == "**":
			if i != len(parts)-1 {
				return nil, &RouteError{"path", "** matches the rest of the path and must be the last segment"}
			}
			r.segs = append(r.segs, routeSeg{rest: true})
		case s == "*":
			r.segs = append(r.segs, routeSeg{any: true})
		case s[0] == ':':
			name := s[1:]
			if name == "" || !isFieldName(name) {
				return nil, &RouteError{"path", fmt.Sprintf("capture %q needs a name of letters, digits and _: write e.g. \":id\"", s)}
			}
			if captures[name] {
				return nil, &RouteError{"path", fmt.Sprintf("capture :%s appears twice", name)}
			}
			captures[name] = true
			r.segs = append(r.segs, routeSeg{capture: name})
		case strings.ContainsAny(s, "*:"):
			return nil, &RouteError{"path", fmt.Sprintf("segment %q mixes text with * or :; a wildcard or a capture takes a whole segment", s)}
		default:
			r.segs = append(r.segs, routeSeg{lit: s})
		}
	}
	for _, s := range status {
		if s < 100 || s > 599 {
			return nil, &RouteError{"status", fmt.Sprintf("status %d is not an HTTP status (100-599)", s)}
		}
		r.Status = append(r.Status, int(s))
	}
	if event == "" {
		return nil, &RouteError{"event", "event is empty: name the event type (e.g. \"login_failed\"), or \"none\" for no event"}
	}
	for k, v := range fields {
		switch {
		case !isFieldName(k) || k == FieldEvent || k == FieldVia || k == FieldFormat:
			return nil, &RouteError{"fields", fmt.Sprintf("%q cannot be set by a route", k)}
		case strings.HasPrefix(v, ":") && !captures[v[1:]]:
			return nil, &RouteError{"fields", fmt.Sprintf("%s = %q names no capture of the path %q", k, v, pattern)}
		}
		r.fields = append(r.fields, [2]string{k, v})
	}
	sort.Slice(r.fields, func(i, j int) bool { return r.fields[i][0] < r.fields[j][0] })
	return r, nil
}

func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return s != ""
}

// match reports whether an access line matches the route; on a match the captures and the
// route's fields are set on r.
func (rt *Route) match(method, path []byte, status int, r *result) bool {
	if len(rt.Methods) > 0 {
		ok := false
		for _, m := range rt.Methods {
			if string(method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(rt.Status) > 0 {
		ok := false
		for _, s := range rt.Status {
			if s == status {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	var caps [maxRouteSegs][]byte
	rest := path
	for i, s := range rt.segs {
		for len(rest) > 0 && rest[0] == '/' {
			rest = rest[1:]
		}
		if s.rest {
			break
		}
		if len(rest) == 0 {
			return false
		}
		seg := rest
		if e := bytes.IndexByte(rest, '/'); e >= 0 {
			seg, rest = rest[:e], rest[e:]
		} else {
			rest = nil
		}
		switch {
		case s.capture != "":
			caps[i] = seg
		case s.any:
		case string(seg) != s.lit:
			return false
		}
	}
	if last := len(rt.segs); last == 0 || !rt.segs[last-1].rest {
		if len(bytes.Trim(rest, "/")) > 0 {
			return false
		}
	}
	for i, s := range rt.segs {
		if s.capture != "" {
			r.set(s.capture, clip(string(caps[i])))
		}
	}
	for _, kv := range rt.fields {
		v := kv[1]
		if name, ok := strings.CutPrefix(v, ":"); ok {
			for i, s := range rt.segs {
				if s.capture == name {
					v = clip(string(caps[i]))
					break
				}
			}
		}
		r.set(kv[0], v)
	}
	r.set(FieldRoute, clip(rt.Pattern))
	return true
}

// String describes the route as `POST /login [200] -> login_failed`.
func (rt *Route) String() string {
	m := "*"
	if len(rt.Methods) > 0 {
		m = strings.Join(rt.Methods, "|")
	}
	var st []string
	for _, s := range rt.Status {
		st = append(st, strconv.Itoa(s))
	}
	return fmt.Sprintf("%s %s [%s] -> %s", m, rt.Pattern, strings.Join(st, " "), rt.Event)
}
