// Package pluginhost finds plugin binaries, learns what components they offer, and launches
// one child process per configured component instance.
package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// BinaryPrefix is the file name prefix of plugin binaries in plugin_dir.
const BinaryPrefix = "tda-plugin-"

// Binary is one plugin executable.
type Binary struct {
	Path string
	// Args are the arguments that make Path serve its components: none for a plugin binary,
	// "plugin-serve" for the plugins built into tda (Builtin).
	Args []string
	// Builtin marks the plugins built into tda (see Builtin).
	Builtin     bool
	Description *sdk.Description
	// SHA256 is the pinned checksum, if the config pins this plugin.
	SHA256 string
	// Env is added to the environment of this plugin's processes.
	Env []string
	// Protocol is the protocol version the agent speaks with this plugin: the highest one
	// both serve (0 when they share none; Err then says so).
	Protocol int
	// Err is why the binary cannot be used: it could not be described, it shares no protocol
	// version with this tda (a *ProtocolError; Description is then kept), or a pin names
	// another plugin.
	Err error

	// memoryLimit is the plugin block's memory_limit for this binary; memoryLimits, of a
	// Builtin, the limits by plugin name (see MemoryLimit).
	memoryLimit  string
	memoryLimits map[string]string
}

// Registry maps components to the binaries that serve them.
type Registry struct {
	Dir        string
	Binaries   []*Binary
	components map[string]*Binary
}

// Pin is a config `plugin` block: an explicit path, a checksum, a memory limit.
type Pin struct {
	Name        string
	Path        string
	SHA256      string
	MemoryLimit string
}

// DefaultDir returns the plugin directory used when the config names none: $TDA_PLUGIN_DIR,
// else "plugins" next to the tda executable.
func DefaultDir() string {
	if d := os.Getenv("TDA_PLUGIN_DIR"); d != "" {
		return d
	}
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

// Discover describes every plugin binary in dir plus the pinned paths. Binaries are described
// in parallel by running `<binary> describe`.
func Discover(ctx context.Context, dir string, pins []Pin) (*Registry, error) {
	reg := &Registry{Dir: dir, components: map[string]*Binary{}}
	var paths []string
	entries, err := os.ReadDir(dir)
	if err != nil && len(pins) == 0 {
		return nil, fmt.Errorf("read plugin_dir %s: %w (build the plugins with `make build`, or set agent.plugin_dir)", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), BinaryPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Mode()&0o111 == 0 {
			continue
		}
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	pinByPath := map[string]Pin{}
	for _, p := range pins {
		path := p.Path
		if path == "" {
			path = filepath.Join(dir, BinaryPrefix+p.Name)
		}
		pinByPath[path] = p
		found := false
		for _, q := range paths {
			if q == path {
				found = true
			}
		}
		if !found {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	reg.Binaries = make([]*Binary, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		go func(i int, p string) {
			defer wg.Done()
			b := &Binary{Path: p, SHA256: pinByPath[p].SHA256}
			if limit := pinByPath[p].MemoryLimit; limit != "" {
				b.Env = []string{"GOMEMLIMIT=" + limit}
				b.memoryLimit = limit
			}
			b.Description, b.Protocol, b.Err = describe(ctx, p)
			reg.Binaries[i] = b
		}(i, p)
	}
	wg.Wait()
	for _, b := range reg.Binaries {
		if b.Description == nil || b.Err != nil {
			continue
		}
		if pin, ok := pinByPath[b.Path]; ok && pin.Name != b.Description.Name {
			b.Err = fmt.Errorf("plugin block %q points at %s, which is plugin %q", pin.Name, b.Path, b.Description.Name)
			continue
		}
		for _, c := range b.Description.Components {
			key := string(c.Kind) + "." + c.Name
			if prev, ok := reg.components[key]; ok {
				return nil, fmt.Errorf("%s is offered by both %s and %s; remove one from %s", key, prev.Path, b.Path, dir)
			}
			reg.components[key] = b
		}
	}
	return reg, nil
}

// DescribeBinary runs `<path> describe` and parses its JSON. A plugin that serves none of
// the protocol versions this tda speaks is an error (a *ProtocolError).
func DescribeBinary(ctx context.Context, path string) (*sdk.Description, error) {
	d, _, err := describe(ctx, path)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// describe runs `<path> describe` and returns the description with the protocol version to
// speak; a *ProtocolError comes with the description.
func describe(ctx context.Context, path string) (*sdk.Description, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "describe")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("%s describe: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return ParseDescription(path, stdout.Bytes(), sdk.ProtocolVersions())
}

// Lookup returns the binary and description of a component.
func (r *Registry) Lookup(kind sdk.ComponentKind, name string) (*Binary, sdk.ComponentDescription, bool) {
	b, ok := r.components[string(kind)+"."+name]
	if !ok {
		return nil, sdk.ComponentDescription{}, false
	}
	c, _ := b.Description.Find(kind, name)
	return b, c, true
}

// Names returns the names of all components of a kind.
func (r *Registry) Names(kind sdk.ComponentKind) []string {
	var out []string
	for key := range r.components {
		if strings.HasPrefix(key, string(kind)+".") {
			out = append(out, strings.TrimPrefix(key, string(kind)+"."))
		}
	}
	sort.Strings(out)
	return out
}

// Launch starts a process of the binary serving a component, for that component alone.
func (r *Registry) Launch(kind sdk.ComponentKind, name string, logger hclog.Logger, env []string, stdout io.Writer) (*host.Process, error) {
	b, c, ok := r.Lookup(kind, name)
	if !ok {
		return nil, fmt.Errorf("no plugin in %s offers %s %q", r.Dir, kind, name)
	}
	return launchBinary(b, c, logger, env, stdout)
}

// launchBinary starts a process of b, with the memory limit that applies to component c.
func launchBinary(b *Binary, c sdk.ComponentDescription, logger hclog.Logger, env []string, stdout io.Writer) (*host.Process, error) {
	env = append(append([]string(nil), env...), b.Env...)
	if limit := b.MemoryLimit(c); limit != "" && b.Builtin {
		env = append(env, "GOMEMLIMIT="+limit)
	}
	return host.Launch(host.LaunchConfig{Path: b.Path, Args: b.Args, SHA256: b.SHA256, Logger: logger,
		Env: env, Stdout: stdout})
}
