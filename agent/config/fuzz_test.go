package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/sdk"
)

// fuzzSpec is a component schema with a field of every type and a repeated labelled block,
// so that the fuzzer reaches the decoder of every kind of value.
var fuzzSpec = &sdk.Spec{
	Fields: []sdk.Field{
		{Name: "s", Type: sdk.TypeString}, {Name: "i", Type: sdk.TypeInt}, {Name: "f", Type: sdk.TypeFloat},
		{Name: "b", Type: sdk.TypeBool}, {Name: "d", Type: sdk.TypeDuration}, {Name: "l", Type: sdk.TypeStringList},
		{Name: "il", Type: sdk.TypeIntList}, {Name: "m", Type: sdk.TypeStringMap},
		{Name: "e", Type: sdk.TypeString, Enum: []string{"a", "b"}},
	},
	Blocks: []sdk.Block{{Name: "rule", Labels: []string{"name"}, Repeated: true, Spec: &sdk.Spec{
		Fields: []sdk.Field{{Name: "match", Type: sdk.TypeString}, {Name: "window", Type: sdk.TypeDuration}}}}},
}

// FuzzLoadBytes feeds arbitrary bytes to the config loader and decodes every component
// block: it must return diagnostics, never panic or overflow its stack, and every error must
// say what it is.
func FuzzLoadBytes(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.hcl"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`plugin "slack" {
  sha256       = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  memory_limit = "64MiB"
  env          = { AWS_REGION = "eu-west-1", TOKEN = env("HOME", "x") }
  inherit_env  = ["AWS_*", "LANG"]
}`,
		`sink "x" "y" {
  retry { initial = "1ms" }
  buffer { max_size = "1KiB" }
  s = "${1 + 2}"
  rule "a" { match = "x" }
}
pipeline "p" {
  from = [source.a.b]
  to   = [sink.x.y]
}`,
		"x = [[[[{a = (1)}]]]]", "x = !!!true ? -1 : 2", `x = "%{ for a in [1] }${a}%{ endfor }"`,
		"x = <<EOT\nheredoc ${1}\nEOT\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := LoadBytes("fuzz.hcl", src)
		if cfg == nil {
			t.Fatal("no config")
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Summary == "" {
				t.Fatalf("an error without a summary: %+v", d)
			}
		}
		if cfg.ParseFailed {
			if !diags.HasErrors() {
				t.Fatal("parse failed without an error")
			}
			return
		}
		for _, c := range cfg.Components {
			_ = cfg.Decode(c, fuzzSpec)
		}
	})
}
