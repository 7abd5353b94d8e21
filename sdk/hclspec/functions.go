package hclspec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// EvalContext returns the evaluation context of tda config files: the functions env() and
// file() for secrets, with relative file paths taken from baseDir. lookupEnv is os.LookupEnv
// unless given.
func EvalContext(baseDir string, lookupEnv func(string) (string, bool)) *hcl.EvalContext {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":  envFunc(lookupEnv),
		"file": fileFunc(baseDir),
	}}
}

// envFunc: env("NAME") is the variable's value and fails when it is unset; env("NAME", "x")
// falls back to "x".
func envFunc(lookup func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "The value of an environment variable.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return cty.NilVal, function.NewArgErrorf(0,
				"environment variable %s is not set; export it or give a default: env(%q, \"...\")", name, name)
		},
	})
}

// fileFunc: file("path") is the file's content without a trailing newline (secrets mounted as
// files, e.g. Docker or Kubernetes secrets).
func fileFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "The content of a file, without its trailing newline.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(baseDir, p)
			}
			b, err := readBounded(p, MaxFileFuncBytes)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %v", p, err)
			}
			return cty.StringVal(strings.TrimRight(string(b), "\r\n")), nil
		},
	})
}

// MaxFileFuncBytes bounds what file() reads: a secret or a certificate, never a device or a
// log.
const MaxFileFuncBytes = 1 << 20

// readBounded reads at most limit bytes of a file, and fails past them.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes; file() reads secrets and certificates, not large files", limit)
	}
	return b, nil
}

// ErrorfAt is a shorthand for an error diagnostic at rng.
func ErrorfAt(rng hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary,
		Detail: fmt.Sprintf(format, args...), Subject: rng.Ptr()}
}
