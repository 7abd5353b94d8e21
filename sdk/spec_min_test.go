package sdk

import (
	"strings"
	"testing"
)

func TestDurationMin(t *testing.T) {
	spec := &Spec{Fields: []Field{{Name: "every", Type: TypeDuration, Default: "10s", Min: "100ms"}}}
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		value string
		want  string // the diagnostic's detail; "" for none
	}{
		{"1ns", "every must be at least 100ms, not 1ns"},
		{"99ms", "every must be at least 100ms, not 99ms"},
		{"0s", "every must be at least 100ms, not 0s"},
		{"100ms", ""},
		{"1h", ""},
	}
	for _, c := range cases {
		cfg, diags := ParseConfig(spec, []byte(`{"every":"`+c.value+`"}`))
		if c.want == "" {
			if len(diags) != 0 || cfg.Duration("every").String() == "" {
				t.Errorf("%s: %v", c.value, diags)
			}
			continue
		}
		if len(diags) != 1 || diags[0].Summary != "Duration too short" || !strings.Contains(diags[0].Detail, c.want) ||
			len(diags[0].Path) != 1 || diags[0].Path[0] != "every" {
			t.Errorf("%s: %+v", c.value, diags)
		}
	}
	for _, bad := range []Spec{
		{Fields: []Field{{Name: "n", Type: TypeInt, Min: "1s"}}},
		{Fields: []Field{{Name: "d", Type: TypeDuration, Min: "often"}}},
		{Fields: []Field{{Name: "d", Type: TypeDuration, Min: "1s", Default: "10ms"}}},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v passes Check", bad.Fields[0])
		}
	}
}
