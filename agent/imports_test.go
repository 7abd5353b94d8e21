// Package agent_test holds the checks that keep the host apart from the plugins.
//
// The host (agent/...) links no plugin: it reaches every component, bundled or not, through
// the plugin protocol (sdk), as it reaches a third-party one. What tda links of the plugins
// is the bundle alone: cmd/tda/bundle.go lists the plugins compiled into tda, which `tda
// plugin-serve` serves in a process of their own. Tests may use plugins (they run real
// components); the checks cover what the tda binary's host code links.
package agent_test

import (
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const (
	module        = "github.com/tda-dev/tda"
	pluginsPrefix = module + "/plugins/"
)

// allowed are the plugin packages a host package may still import: importer -> imported.
// It is empty and stays so; the test fails on an import that is not listed, and on a listed
// one that is gone (delete its entry).
var allowed = map[string][]string{}

// listedPackage is what go list says of a package.
type listedPackage struct {
	ImportPath string
	Imports    []string
}

// hostPackages lists every package under agent/ with everything it links (no test files).
func hostPackages(t *testing.T) []listedPackage {
	t.Helper()
	noteSources(t, "..")
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", "./agent/...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no package under agent/")
	}
	return pkgs
}

// TestHostImportsNoPlugin: no package the host links imports a package under plugins/,
// directly or through another package of the module, beyond the shrinking allow-list.
func TestHostImportsNoPlugin(t *testing.T) {
	found := map[string]map[string]bool{} // importer -> plugin packages
	for _, p := range hostPackages(t) {
		if strings.HasPrefix(p.ImportPath, pluginsPrefix) {
			continue // reported at its importer
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, pluginsPrefix) {
				if found[p.ImportPath] == nil {
					found[p.ImportPath] = map[string]bool{}
				}
				found[p.ImportPath][imp] = true
			}
		}
	}
	for importer, imps := range found {
		for imp := range imps {
			if !contains(allowed[importer], imp) {
				t.Errorf("%s imports %s: the host reaches plugins through the plugin protocol "+
					"(an sdk.Action of the component, a value the plugin reports, or a contract in sdk/)", importer, imp)
			}
		}
	}
	for importer, imps := range allowed {
		for _, imp := range imps {
			if !found[importer][imp] {
				t.Errorf("%s no longer imports %s: delete the entry from allowed", importer, imp)
			}
		}
	}
}

// TestOnlyTheBundleLinksPlugins: in cmd/tda, bundle.go alone imports plugins; the rest of
// the command is the host.
func TestOnlyTheBundleLinksPlugins(t *testing.T) {
	dir := filepath.Join("..", "cmd", "tda")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	bundleImports := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		imps := fileImports(t, f)
		for _, imp := range imps {
			if !strings.HasPrefix(imp, pluginsPrefix) {
				continue
			}
			if filepath.Base(f) != "bundle.go" {
				t.Errorf("%s imports %s: only bundle.go links plugins into tda", f, imp)
				continue
			}
			bundleImports++
		}
	}
	if bundleImports == 0 {
		t.Errorf("cmd/tda/bundle.go imports no plugin: the check no longer looks at the bundle")
	}
}

func fileImports(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// noteSources reads the name and size of every Go source and module file of the module:
// go test caches a result by the files the test touched, and go list reads them in another
// process, so without this an import added anywhere would leave a passing result cached.
func noteSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "testdata", "node_modules", "sdk", "examples":
				if path != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if name := d.Name(); strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			if _, err := os.Stat(path); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
