// Package hclspec decodes a component's HCL block with the component's sdk.Spec and maps
// diagnostics back to positions in the config file. The agent uses it for every plugin block;
// sdk/sdktest uses it so plugin tests take the same HCL users write.
package hclspec

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/tda-dev/tda/sdk"
)

// DecSpec returns the hcldec spec of a component spec.
func DecSpec(spec *sdk.Spec) hcldec.ObjectSpec {
	return objectSpec(spec, nil)
}

func objectSpec(spec *sdk.Spec, labels []string) hcldec.ObjectSpec {
	obj := hcldec.ObjectSpec{}
	for i, l := range labels {
		obj[l] = &hcldec.BlockLabelSpec{Index: i, Name: l}
	}
	if spec == nil {
		return obj
	}
	for _, f := range spec.Fields {
		obj[f.Name] = &hcldec.AttrSpec{Name: f.Name, Type: CtyType(f.Type), Required: f.Required}
	}
	for _, b := range spec.Blocks {
		nested := objectSpec(b.Spec, b.Labels)
		if b.Repeated {
			min := 0
			if b.Required {
				min = 1
			}
			obj[b.Name] = &hcldec.BlockListSpec{TypeName: b.Name, Nested: nested, MinItems: min}
		} else {
			obj[b.Name] = &hcldec.BlockSpec{TypeName: b.Name, Nested: nested, Required: b.Required}
		}
	}
	return obj
}

// CtyType maps an attribute type to its HCL value type.
func CtyType(t sdk.Type) cty.Type {
	switch t {
	case sdk.TypeInt, sdk.TypeFloat:
		return cty.Number
	case sdk.TypeBool:
		return cty.Bool
	case sdk.TypeStringList:
		return cty.List(cty.String)
	case sdk.TypeIntList:
		return cty.List(cty.Number)
	case sdk.TypeStringMap:
		return cty.Map(cty.String)
	default:
		return cty.String
	}
}

// Decode decodes body with spec into the JSON that sdk.ParseConfig takes, then runs the
// spec's own checks (integers, durations, allowed values, duplicate labels) so every static
// mistake is reported with its position. blockRange positions problems of the block itself.
func Decode(spec *sdk.Spec, body hcl.Body, ctx *hcl.EvalContext, blockRange hcl.Range) ([]byte, hcl.Diagnostics) {
	val, diags := hcldec.Decode(body, DecSpec(spec), ctx)
	hclErrors := diags.HasErrors()
	if hclErrors && val != cty.NilVal {
		// Values HCL could not decode are unknown; treat them as absent to check the rest.
		val, _ = cty.Transform(val, func(_ cty.Path, v cty.Value) (cty.Value, error) {
			if !v.IsKnown() {
				return cty.NullVal(v.Type()), nil
			}
			return v, nil
		})
	}
	if val == cty.NilVal || !val.IsWhollyKnown() {
		if hclErrors {
			return nil, diags
		}
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown value",
			Detail:  "Every value in a component block must be known when the config is loaded.",
			Subject: blockRange.Ptr()})
	}
	data, err := ctyjson.Marshal(val, val.Type())
	if err != nil {
		if hclErrors {
			return nil, diags
		}
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot encode config",
			Detail: err.Error(), Subject: blockRange.Ptr()})
	}
	// Check values too, even after structural errors, so one run reports every mistake; skip
	// what HCL already reported (a missing argument, an attribute of the wrong type).
	_, sdiags := sdk.ParseConfig(spec, data)
	for _, d := range Diagnostics(sdiags, spec, body, blockRange) {
		if hclErrors && (d.Summary == "Missing required argument" || d.Summary == "Missing required block") {
			continue
		}
		if !reported(diags, d) {
			diags = append(diags, d)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return data, diags
}

// reported tells whether diags already has a diagnostic at d's position.
func reported(diags hcl.Diagnostics, d *hcl.Diagnostic) bool {
	for _, o := range diags {
		if o.Subject != nil && d.Subject != nil && o.Subject.Filename == d.Subject.Filename &&
			o.Subject.Start == d.Subject.Start {
			return true
		}
	}
	return false
}

// Diagnostics converts component diagnostics to HCL diagnostics positioned in body.
func Diagnostics(ds sdk.Diagnostics, spec *sdk.Spec, body hcl.Body, blockRange hcl.Range) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range ds {
		sev := hcl.DiagError
		if d.Severity == sdk.SeverityWarning {
			sev = hcl.DiagWarning
		}
		rng := blockRange
		if r, ok := Range(spec, body, d.Path); ok {
			rng = r
		}
		summary, detail := d.Summary, d.Detail
		if detail == "" && len(d.Path) > 0 {
			// A plugin's one-line error: name what it is about, and let the message explain.
			summary, detail = "Invalid "+d.Path[len(d.Path)-1], sentence(d.Summary)
		}
		out = append(out, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: rng.Ptr()})
	}
	return out
}

func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if last := s[len(s)-1]; last != '.' && last != '?' && last != '!' {
		s += "."
	}
	return s
}

// Range returns the source range that path (as used in sdk diagnostics) addresses inside
// body: an attribute's value, or a block's header. It needs native-syntax bodies.
func Range(spec *sdk.Spec, body hcl.Body, path []string) (hcl.Range, bool) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok || len(path) == 0 {
		return hcl.Range{}, false
	}
	name := path[0]
	if attr, ok := sb.Attributes[name]; ok {
		// "#i" after a list attribute addresses its i-th element, when written as a list.
		if len(path) == 2 && strings.HasPrefix(path[1], "#") {
			var idx int
			tup, isTuple := attr.Expr.(*hclsyntax.TupleConsExpr)
			if _, err := fmt.Sscanf(path[1], "#%d", &idx); err == nil && isTuple && idx >= 0 && idx < len(tup.Exprs) {
				return tup.Exprs[idx].Range(), true
			}
		}
		return attr.Expr.Range(), true
	}
	var bspec sdk.Block
	found := false
	if spec != nil {
		bspec, found = spec.BlockByName(name)
	}
	var blocks []*hclsyntax.Block
	for _, b := range sb.Blocks {
		if b.Type == name {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return hcl.Range{}, false
	}
	rest := path[1:]
	target := blocks[0]
	switch {
	case found && len(bspec.Labels) > 0:
		n := len(bspec.Labels)
		if len(rest) < n {
			return blocks[0].DefRange(), true
		}
		matched := false
		for _, b := range blocks {
			if len(b.Labels) == n && equal(b.Labels, rest[:n]) {
				target, matched = b, true
				break
			}
		}
		if !matched {
			return blocks[0].DefRange(), true
		}
		rest = rest[n:]
	case len(rest) > 0 && strings.HasPrefix(rest[0], "#"):
		var idx int
		if _, err := fmt.Sscanf(rest[0], "#%d", &idx); err == nil && idx >= 0 && idx < len(blocks) {
			target = blocks[idx]
		}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return target.DefRange(), true
	}
	var nested *sdk.Spec
	if found {
		nested = bspec.Spec
	}
	if r, ok := Range(nested, target.Body, rest); ok {
		return r, true
	}
	return target.DefRange(), true
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
