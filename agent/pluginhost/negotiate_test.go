package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{buildDir, bundleDir} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// protocolPlugins builds testdata/protoplugin once per test process and installs it in a
// fresh plugin directory under the names that choose its versions: v1-2 (serves 1 and 2),
// v3-4 (only newer ones) and old (a description with the single integer of plugins built
// before negotiation).
func protocolPlugins(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// go test caches a result by the files the test reads: reading the sources the
		// plugin is built from makes a change to them run the test again.
		_ = filepath.WalkDir(filepath.Join("..", "..", "sdk"), func(path string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(path, ".go") {
				_, _ = os.ReadFile(path)
			}
			return nil
		})
		_, _ = os.ReadFile(filepath.Join("testdata", "protoplugin", "main.go"))
		if buildDir, buildErr = os.MkdirTemp("", "tda-protoplugin"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "protoplugin"), "./testdata/protoplugin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the test plugin: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	for _, name := range []string{"v1-2", "v3-4", "old"} {
		copyFile(t, filepath.Join(buildDir, "protoplugin"), filepath.Join(dir, pluginhost.BinaryPrefix+name))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryAndLaunchNegotiateTheProtocol(t *testing.T) {
	if got := sdk.ProtocolVersions(); len(got) != 1 || got[0] != 1 {
		t.Skipf("the expectations below are those of a host speaking protocol 1 alone, not %v", got)
	}
	dir := protocolPlugins(t)
	ctx := context.Background()
	reg, err := pluginhost.Discover(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*pluginhost.Binary{}
	for _, b := range reg.Binaries {
		byName[strings.TrimPrefix(filepath.Base(b.Path), pluginhost.BinaryPrefix)] = b
	}

	// A plugin serving 1 and 2, and an old one with the single integer: both usable at 1.
	for _, name := range []string{"v1-2", "old"} {
		b := byName[name]
		if b.Err != nil || b.Protocol != 1 {
			t.Fatalf("%s: protocol %d, error %v", name, b.Protocol, b.Err)
		}
		comp := "proto_" + strings.ReplaceAll(name, "-", "_")
		if _, _, ok := reg.Lookup(sdk.KindSink, comp); !ok {
			t.Fatalf("%s: sink %s not offered", name, comp)
		}
		p, err := reg.Launch(sdk.KindSink, comp, nil, nil, nil)
		if err != nil {
			t.Fatalf("launch %s: %v", name, err)
		}
		if got := p.Protocol(); got != 1 {
			t.Errorf("%s: the handshake settled on protocol %d", name, got)
		}
		d, err := p.Describe(ctx)
		if err != nil || d.Name != "proto-"+name {
			t.Errorf("%s: describe over the protocol: %+v %v", name, d, err)
		}
		p.Kill()
	}
	if d := byName["v1-2"].Description; d.Protocol != 1 || len(d.Protocols) != 2 {
		t.Fatalf("v1-2 describes itself as %d %v", d.Protocol, d.Protocols)
	}

	// A plugin serving only newer versions is refused with what to do, and offers nothing.
	b := byName["v3-4"]
	var pe *pluginhost.ProtocolError
	if !errors.As(b.Err, &pe) || b.Err.Error() !=
		"plugin proto-v3-4 serves protocol 3, 4; this tda speaks 1: upgrade tda or use a plugin built for protocol 1" {
		t.Fatalf("v3-4: %v", b.Err)
	}
	if _, _, ok := reg.Lookup(sdk.KindSink, "proto_v3_4"); ok {
		t.Fatal("an incompatible plugin's component is offered")
	}
	if d := b.Description; d == nil || len(d.Components) != 1 {
		t.Fatal("the incompatible plugin's description is lost: validate cannot say which plugin offers its components")
	}
	// Launched anyway (its description skipped), the handshake refuses it too.
	_, err = pluginhost.DescribeBinary(ctx, b.Path)
	if !errors.As(err, &pe) {
		t.Fatalf("DescribeBinary: %v", err)
	}
	_, err = launchDirect(b.Path)
	if err == nil || !strings.Contains(err.Error(), "serves none of the protocol versions this host speaks") {
		t.Fatalf("launch of v3-4: %v", err)
	}
}

// The config names the component of an incompatible plugin: validate says at the block that
// the plugin offering it cannot be used, and why, instead of calling the type unknown.
func TestLoaderNamesTheIncompatiblePlugin(t *testing.T) {
	if got := sdk.ProtocolVersions(); len(got) != 1 || got[0] != 1 {
		t.Skipf("the expectations below are those of a host speaking protocol 1 alone, not %v", got)
	}
	dir := protocolPlugins(t)
	cfg := filepath.Join(t.TempDir(), "tda.hcl")
	src := `agent { data_dir = "` + filepath.Join(t.TempDir(), "data") + `" }

sink "proto_v3_4" "newer" {}
sink "proto_v1_2" "both" {}
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, diags := loader.Load(context.Background(), cfg, loader.Options{PluginDir: dir})
	var errs []*hcl.Diagnostic
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	const why = "plugin proto-v3-4 serves protocol 3, 4; this tda speaks 1: upgrade tda or use a plugin built for protocol 1"
	if len(errs) != 1 || errs[0].Subject == nil || errs[0].Subject.Start.Line != 3 ||
		!strings.Contains(errs[0].Detail, "tda-plugin-v3-4 offers a sink of type \"proto_v3_4\" but cannot be used") ||
		!strings.Contains(errs[0].Detail, why) {
		t.Fatalf("diagnostics: %v", diags)
	}
}
