// Package cond is the small condition language of rule `where` and `unless` attributes:
//
//	actor_role == admin
//	actor_role == "admin" || path =~ "^/admin/"
//	!(status in [401, 403]) and ip != "10.0.0.5"
//	actor                      # the field is present and not empty
//
// Operators: == != =~ (regexp match) !~ in [..]; combinators: && and || or ! not, parentheses.
// Values are bare words or double-quoted strings. Field names are event fields, plus "origin"
// and "source" for where the line came from.
package cond

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Lookup returns the value of a field ("" when absent).
type Lookup func(name string) string

// Expr is a compiled condition.
type Expr struct {
	src  string
	root node
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// Eval evaluates the condition. A nil Expr is false.
func (e *Expr) Eval(get Lookup) bool {
	if e == nil {
		return false
	}
	return e.root.eval(get)
}

// Fields lists the field names the condition reads.
func (e *Expr) Fields() []string {
	seen := map[string]bool{}
	var out []string
	e.root.fields(func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	})
	return out
}

type node interface {
	eval(Lookup) bool
	fields(func(string))
}

type orNode struct{ l, r node }
type andNode struct{ l, r node }
type notNode struct{ x node }
type cmpNode struct {
	field string
	op    string
	vals  []string
	re    *regexp.Regexp
}

func (n orNode) eval(g Lookup) bool  { return n.l.eval(g) || n.r.eval(g) }
func (n andNode) eval(g Lookup) bool { return n.l.eval(g) && n.r.eval(g) }
func (n notNode) eval(g Lookup) bool { return !n.x.eval(g) }
func (n *cmpNode) eval(g Lookup) bool {
	v := g(n.field)
	switch n.op {
	case "":
		return v != ""
	case "==":
		return v == n.vals[0]
	case "!=":
		return v != n.vals[0]
	case "=~":
		return n.re.MatchString(v)
	case "!~":
		return !n.re.MatchString(v)
	case "in":
		for _, x := range n.vals {
			if v == x {
				return true
			}
		}
	}
	return false
}

func (n orNode) fields(f func(string))   { n.l.fields(f); n.r.fields(f) }
func (n andNode) fields(f func(string))  { n.l.fields(f); n.r.fields(f) }
func (n notNode) fields(f func(string))  { n.x.fields(f) }
func (n *cmpNode) fields(f func(string)) { f(n.field) }

// Parse compiles a condition.
func Parse(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at position %d", p.toks[p.pos].text, p.toks[p.pos].at+1)
	}
	return &Expr{src: src, root: root}, nil
}

type token struct {
	kind byte // 'w' word, 's' string, 'o' operator/punctuation
	text string
	at   int
}

func isWordChar(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c == '/' || c == ':' || c == '@' || c == '*' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at position %d", i+1)
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("bad string at position %d: %v", i+1, err)
			}
			toks = append(toks, token{'s', v, i})
			i = j + 1
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") ||
			strings.HasPrefix(s[i:], "=~") || strings.HasPrefix(s[i:], "!~") ||
			strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, token{'o', s[i : i+2], i})
			i += 2
		case c == '!' || c == '(' || c == ')' || c == '[' || c == ']' || c == ',':
			toks = append(toks, token{'o', string(c), i})
			i++
		case isWordChar(c):
			j := i
			for j < len(s) && isWordChar(s[j]) {
				j++
			}
			toks = append(toks, token{'w', s[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q at position %d", c, i+1)
		}
	}
	return toks, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *parser) isOp(texts ...string) bool {
	t := p.peek()
	if t == nil || t.kind == 's' {
		return false
	}
	for _, x := range texts {
		if t.text == x {
			return true
		}
	}
	return false
}

func (p *parser) or() (node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isOp("||", "or") {
		p.pos++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isOp("&&", "and") {
		p.pos++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary() (node, error) {
	t := p.peek()
	if t == nil {
		return nil, fmt.Errorf("condition ends too early")
	}
	if p.isOp("!", "not") {
		p.pos++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	if p.isOp("(") {
		p.pos++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.isOp(")") {
			return nil, fmt.Errorf("missing ) for ( at position %d", t.at+1)
		}
		p.pos++
		return x, nil
	}
	if t.kind != 'w' {
		return nil, fmt.Errorf("expected a field name at position %d, found %q", t.at+1, t.text)
	}
	p.pos++
	n := &cmpNode{field: t.text}
	if !p.isOp("==", "!=", "=~", "!~", "in") {
		return n, nil
	}
	op := p.toks[p.pos]
	p.pos++
	n.op = op.text
	if n.op == "in" {
		if !p.isOp("[") {
			return nil, fmt.Errorf("expected [ after in at position %d", op.at+1)
		}
		p.pos++
		for !p.isOp("]") {
			v := p.peek()
			if v == nil || v.kind == 'o' {
				return nil, fmt.Errorf("expected a value in the list after position %d", op.at+1)
			}
			n.vals = append(n.vals, v.text)
			p.pos++
			if p.isOp(",") {
				p.pos++
			}
		}
		p.pos++
		return n, nil
	}
	v := p.peek()
	if v == nil || v.kind == 'o' {
		return nil, fmt.Errorf("expected a value after %s at position %d", n.op, op.at+1)
	}
	p.pos++
	n.vals = []string{v.text}
	if n.op == "=~" || n.op == "!~" {
		re, err := regexp.Compile(v.text)
		if err != nil {
			return nil, fmt.Errorf("invalid regexp %q: %v", v.text, err)
		}
		n.re = re
	}
	return n, nil
}
