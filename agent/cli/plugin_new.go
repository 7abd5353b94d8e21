package cli

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/tda-dev/tda/sdk"
)

//go:embed scaffold/*.tmpl
var scaffoldFS embed.FS

// scaffoldGoVersion is the go directive of a new plugin module: the SDK's own (a test keeps the
// two equal), so a module that builds the SDK builds the plugin.
const scaffoldGoVersion = "1.26.0"

var pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

type pluginNewCommand struct{ env *Env }

func (c *pluginNewCommand) Synopsis() string {
	return "Write a new plugin module, ready to build and test"
}

func (c *pluginNewCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda plugin new NAME [-kind processor|sink|source] [-dir DIR] [-module PATH]
                           [-component NAME] [-sdk PATH]

  Writes a Go module for the plugin NAME that imports only the tda SDK: the component
  (a working example: a processor that marks lines holding given words, a sink that
  appends events to a file, or a source that emits a numbered line at an interval, with
  its checkpoint), its config schema, tests through the real plugin protocol with
  sdk/sdktest, cmd/tda-plugin-NAME/main.go and a README. Then:

    cd tda-plugin-NAME && go mod tidy && go test ./... &&
    go build -o PLUGIN_DIR/tda-plugin-NAME ./cmd/tda-plugin-NAME

  The agent runs only binaries named tda-plugin-* from its plugin_dir.

Flags:
  -kind KIND        processor (default), sink or source.
  -dir DIR          Where to write the module (default: ./tda-plugin-NAME); must not exist
                    or be empty.
  -module PATH      The module path (default: example.com/tda-plugin-NAME).
  -component NAME   The component's name, as config blocks name it (default: NAME).
  -sdk PATH         A local checkout of the SDK (the sdk/ folder of tda's repository): adds
                    a replace directive, for building before the SDK version is published.
`)
}

// scaffoldData fills the templates.
type scaffoldData struct {
	Name, Component, Kind, Package, Module, SDKVersion, SDKPath, GoVersion, File string
}

func (c *pluginNewCommand) Run(args []string) int {
	fs := c.env.FlagSet("plugin new")
	kind := fs.String("kind", "processor", "")
	dir := fs.String("dir", "", "")
	module := fs.String("module", "", "")
	component := fs.String("component", "", "")
	sdkPath := fs.String("sdk", "", "")
	// The name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		c.env.Errorf("name the plugin: tda plugin new NAME")
		return 1
	}
	if !pluginNameRE.MatchString(name) {
		c.env.Errorf("%q is not a plugin name: lower-case letters, digits and _, starting with a letter", name)
		return 1
	}
	switch *kind {
	case "processor", "sink", "source":
	default:
		c.env.Errorf("-kind %q: use processor, sink or source", *kind)
		return 1
	}
	if *component == "" {
		*component = name
	}
	if !pluginNameRE.MatchString(*component) {
		c.env.Errorf("-component %q: lower-case letters, digits and _, starting with a letter", *component)
		return 1
	}
	if *dir == "" {
		*dir = "tda-plugin-" + name
	}
	if *module == "" {
		*module = "example.com/tda-plugin-" + name
	}
	data := scaffoldData{Name: name, Component: *component, Kind: *kind,
		Package: strings.ReplaceAll(name, "_", ""), Module: *module, SDKVersion: sdk.SDKVersion,
		GoVersion: scaffoldGoVersion, File: *kind + ".go"}
	if *sdkPath != "" {
		abs, err := filepath.Abs(*sdkPath)
		if err == nil {
			_, err = os.Stat(filepath.Join(abs, "go.mod"))
		}
		if err != nil {
			c.env.Errorf("-sdk %s: not a module folder (%v); point it at the sdk/ folder of tda's repository", *sdkPath, err)
			return 1
		}
		data.SDKPath = abs
	}
	files, err := renderScaffold(data)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	if err := writeScaffold(*dir, files); err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	c.env.Printf("Wrote the %s plugin %q in %s:\n", *kind, name, *dir)
	for _, f := range sortedKeys(files) {
		c.env.Printf("  %s\n", f)
	}
	c.env.Printf("Next: cd %s && go mod tidy && go test ./... && go build -o PLUGIN_DIR/tda-plugin-%s ./cmd/tda-plugin-%s\n",
		*dir, name, name)
	return 0
}

// renderScaffold returns the module's files by their path in it.
func renderScaffold(d scaffoldData) (map[string][]byte, error) {
	out := map[string][]byte{}
	for path, tmpl := range map[string]string{
		"go.mod":                                "go.mod.tmpl",
		"README.md":                             "README.md.tmpl",
		d.Kind + ".go":                          d.Kind + ".go.tmpl",
		d.Kind + "_test.go":                     d.Kind + "_test.go.tmpl",
		"cmd/tda-plugin-" + d.Name + "/main.go": "main.go.tmpl",
	} {
		src, err := scaffoldFS.ReadFile("scaffold/" + tmpl)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", tmpl, err)
		}
		t, err := template.New(tmpl).Delims("[[", "]]").Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", tmpl, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, d); err != nil {
			return nil, fmt.Errorf("template %s: %w", tmpl, err)
		}
		out[path] = b.Bytes()
	}
	return out, nil
}

// writeScaffold writes files under dir, which must not exist or be empty: nothing of the
// user's is ever overwritten.
func writeScaffold(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("%s exists and is not empty; choose another -dir", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot use %s: %w", dir, err)
	}
	for path, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", filepath.Dir(full), err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", full, err)
		}
	}
	return nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
