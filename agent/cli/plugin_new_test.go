package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A new plugin of each kind builds, passes its own tests through the real protocol, and is
// listed by tda plugins once its binary is in a plugin directory.
func TestPluginNewBuildsAndIsListed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three Go modules")
	}
	sdkDir, err := filepath.Abs("../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	root, pluginDir := t.TempDir(), t.TempDir()
	for _, kind := range []string{"processor", "sink", "source"} {
		name := "new_" + kind
		dir := filepath.Join(root, name)
		code, out, errOut := runCLI("plugin", "new", name, "-kind", kind, "-dir", dir, "-sdk", sdkDir)
		if code != 0 || !strings.Contains(out, "Wrote the "+kind+" plugin") {
			t.Fatalf("plugin new: %d\n%s%s", code, out, errOut)
		}
		for _, args := range [][]string{
			{"mod", "tidy"},
			{"vet", "./..."},
			{"test", "./..."},
			{"build", "-o", filepath.Join(pluginDir, "tda-plugin-"+name), "./cmd/tda-plugin-" + name},
		} {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: go %s: %v\n%s", kind, strings.Join(args, " "), err, b)
			}
		}
	}
	code, out, errOut := runCLI("plugins", "-plugin-dir", pluginDir)
	for _, want := range []string{"processor new_processor", "sink      new_sink", "source    new_source"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("tda plugins does not list %q: %d\n%s%s", want, code, out, errOut)
		}
	}
}

func TestPluginNewRefuses(t *testing.T) {
	busy := t.TempDir()
	if err := os.WriteFile(filepath.Join(busy, "keep.go"), []byte("package keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plugin", "new"}, "name the plugin"},
		{[]string{"plugin", "new", "Bad-Name"}, "is not a plugin name"},
		{[]string{"plugin", "new", "ok", "-kind", "filter"}, `-kind "filter": use processor, sink or source`},
		{[]string{"plugin", "new", "ok", "-dir", busy}, "exists and is not empty"},
		{[]string{"plugin", "new", "ok", "-dir", t.TempDir(), "-sdk", "/nonexistent"}, "not a module folder"},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("tda %s: %d %q, want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(busy, "keep.go")); string(b) != "package keep\n" {
		t.Fatal("a file of the user's was overwritten")
	}
}

// The go directive of a new module is the SDK's own.
func TestScaffoldGoVersionIsTheSDKs(t *testing.T) {
	b, err := os.ReadFile("../../sdk/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil || string(m[1]) != scaffoldGoVersion {
		t.Fatalf("sdk/go.mod says go %s, the scaffold writes go %s", m[1], scaffoldGoVersion)
	}
}
