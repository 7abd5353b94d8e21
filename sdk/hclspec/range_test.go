package hclspec

import (
	"fmt"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/sdk"
)

// TestRangeOfListElement: "#i" after a list attribute points at its i-th element; an index
// out of range, or a list not written as one, points at the whole attribute.
func TestRangeOfListElement(t *testing.T) {
	src := "paths = [\n  \"a\",\n  \"bb\",\n]\nother = concat([\"x\"], [\"y\"])\n"
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "paths", Type: sdk.TypeStringList}, {Name: "other", Type: sdk.TypeStringList}}}
	tests := []struct {
		path []string
		want string // line:col of the range start
	}{
		{[]string{"paths", "#1"}, "3:3"},
		{[]string{"paths", "#0"}, "2:3"},
		{[]string{"paths", "#2"}, "1:9"},
		{[]string{"paths", "#-1"}, "1:9"},
		{[]string{"paths", "x"}, "1:9"},
		{[]string{"paths"}, "1:9"},
		{[]string{"other", "#0"}, "5:9"},
	}
	for _, tt := range tests {
		r, ok := Range(spec, f.Body, tt.path)
		got := ""
		if ok {
			got = fmt.Sprintf("%d:%d", r.Start.Line, r.Start.Column)
		}
		if got != tt.want {
			t.Errorf("%v: %q, want %q", tt.path, got, tt.want)
		}
	}
}
