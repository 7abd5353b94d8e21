// Package pluginhost finds plugin binaries, learns what components they offer, and launches
// one child process per configured component instance.
package pluginhost

import (
	"bytes"
	"context"
	"errors"
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
	// Env is set in the environment of this plugin's processes (NAME=value), InheritEnv
	// names the variables of the agent's environment they get beside the base set.
	Env        []string
	InheritEnv []string
	// Protocol is the protocol version the agent speaks with this plugin: the highest one
	// both serve (0 when they share none; Err then says so).
	Protocol int
	// Pin is the name of the plugin block that names this binary ("" for none).
	Pin string
	// Err is why the binary cannot be used: its pin failed (a *host.PinError: nothing of it
	// ran), it could not be described, it shares no protocol version with this tda (a
	// *ProtocolError; Description is then kept), or a pin names another plugin.
	Err error

	// exe holds the checked bytes of a pinned binary: describe and every launch run them.
	exe *host.Executable
	// memoryLimit is the plugin block's memory_limit for this binary; pins, of a Builtin,
	// the plugin blocks that name its plugins, by plugin name (see MemoryLimit and Shares).
	memoryLimit string
	pins        map[string]Pin
	// linked holds, of a Builtin, its components linked into the agent, by "kind.name".
	linked map[string]sdk.Component
}

// Registry maps components to the binaries that serve them. Close releases it.
type Registry struct {
	Dir        string
	Binaries   []*Binary
	components map[string]*Binary
}

// Pin is a config `plugin` block: an explicit path, a checksum, a memory limit, and what its
// processes get in their environment.
type Pin struct {
	Name        string
	Path        string
	SHA256      string
	MemoryLimit string
	// Env is set for the plugin's processes (NAME=value); InheritEnv names variables of the
	// agent's environment they also get (names, or prefixes ending in '*').
	Env        []string
	InheritEnv []string
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

// samePath reports whether two paths name the same file: the same path once absolute and
// cleaned, or the same file through a link.
func samePath(a, b string) bool {
	if a == b {
		return true
	}
	aa, err1 := filepath.Abs(a)
	ba, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == ba {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// namedByBlock reports whether a plugin block names the file at path.
func namedByBlock(pinByPath map[string]Pin, path string) bool {
	for p := range pinByPath {
		if samePath(p, path) {
			return true
		}
	}
	return false
}

// Discover describes every plugin binary in dir plus the pinned paths, in parallel, by
// running `<binary> describe`.
//
// Pins hold these invariants:
//   - a pinned binary (sha256) is read once and hashed before anything of it runs; on a
//     failure (missing, unreadable, another checksum) it is never run, and its Err is a
//     *host.PinError. Describe and every later launch run the bytes that were hashed.
//   - a plugin block takes its plugin's place: the file dir/tda-plugin-NAME is not
//     discovered on its own when the block points elsewhere, and a binary that describes
//     itself as NAME without being the one the block names serves nothing. A failed pin
//     therefore never falls back to an unpinned binary of the same name.
func Discover(ctx context.Context, dir string, pins []Pin) (*Registry, error) {
	reg := &Registry{Dir: dir, components: map[string]*Binary{}}
	entries, err := os.ReadDir(dir)
	if err != nil && len(pins) == 0 {
		return nil, fmt.Errorf("read plugin_dir %s: %w (build the plugins with `make build`, or set agent.plugin_dir)", dir, err)
	}
	pinByPath := map[string]Pin{}
	blockByName := map[string]string{}
	var paths []string
	for _, p := range pins {
		path := p.Path
		if path == "" {
			path = filepath.Join(dir, BinaryPrefix+p.Name)
		}
		if _, twice := pinByPath[path]; !twice {
			paths = append(paths, path)
		}
		pinByPath[path] = p
		blockByName[p.Name] = path
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), BinaryPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Mode()&0o111 == 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		// A file a plugin block names is already listed, under the block's spelling of its
		// path: listed again it would be described unchecked. And when the block of this
		// name points elsewhere, this file is not that plugin.
		if namedByBlock(pinByPath, path) {
			continue
		}
		if _, ok := blockByName[strings.TrimPrefix(e.Name(), BinaryPrefix)]; ok {
			continue
		}
		paths = append(paths, path)
	}
	sort.Strings(paths)
	reg.Binaries = make([]*Binary, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		go func(i int, p string) {
			defer wg.Done()
			pin, pinned := pinByPath[p]
			b := &Binary{Path: p, SHA256: pin.SHA256, Env: append([]string(nil), pin.Env...), InheritEnv: pin.InheritEnv}
			if pinned {
				b.Pin = pin.Name
			}
			if pin.MemoryLimit != "" {
				b.Env = append(b.Env, "GOMEMLIMIT="+pin.MemoryLimit)
				b.memoryLimit = pin.MemoryLimit
			}
			reg.Binaries[i] = b
			if pin.SHA256 != "" {
				if b.exe, b.Err = host.OpenPinned(p, pin.SHA256); b.Err != nil {
					return
				}
			}
			b.Description, b.Protocol, b.Err = describe(ctx, b)
		}(i, p)
	}
	wg.Wait()
	for _, b := range reg.Binaries {
		if b.Description == nil || b.Err != nil {
			continue
		}
		if b.Pin != "" && b.Pin != b.Description.Name {
			b.Err = fmt.Errorf("plugin block %q points at %s, which is plugin %q", b.Pin, b.Path, b.Description.Name)
			continue
		}
		if blockPath, ok := blockByName[b.Description.Name]; ok && b.Pin == "" {
			b.Err = fmt.Errorf("this binary is plugin %q, whose plugin block names %s: only that one is used",
				b.Description.Name, blockPath)
			continue
		}
		for _, c := range b.Description.Components {
			key := string(c.Kind) + "." + c.Name
			if prev, ok := reg.components[key]; ok {
				reg.Close()
				return nil, fmt.Errorf("%s is offered by both %s and %s; remove one from %s", key, prev.Path, b.Path, dir)
			}
			reg.components[key] = b
		}
	}
	return reg, nil
}

// Close releases the checked copies of pinned binaries: nothing can be launched from the
// registry afterwards. Processes already running keep running.
func (r *Registry) Close() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, b := range r.Binaries {
		if b != nil && b.exe != nil {
			errs = append(errs, b.exe.Close())
		}
	}
	return errors.Join(errs...)
}

// DescribeBinary runs `<path> describe` and parses its JSON. A plugin that serves none of
// the protocol versions this tda speaks is an error (a *ProtocolError). It runs the binary
// unchecked: for binaries no pin names.
func DescribeBinary(ctx context.Context, path string) (*sdk.Description, error) {
	d, _, err := describe(ctx, &Binary{Path: path})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// describe runs `<binary> describe`, in the environment its processes get, and returns the
// description with the protocol version to speak; a *ProtocolError comes with the
// description. A pinned binary runs from its checked bytes.
func describe(ctx context.Context, b *Binary) (*sdk.Description, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Path, "describe")
	cmd.Env = host.PluginEnv(os.Environ(), b.InheritEnv, b.Env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := cmd.Start
	if b.exe != nil {
		start = func() error { return b.exe.Start(cmd) }
	}
	err := start()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s describe: %w: %s", b.Path, err, strings.TrimSpace(stderr.String()))
	}
	return ParseDescription(b.Path, stdout.Bytes(), sdk.ProtocolVersions())
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

// launchBinary starts a process of b for component c: with the environment and memory limit
// of b's plugin block, or for a Builtin, of the block that names c's plugin.
func launchBinary(b *Binary, c sdk.ComponentDescription, logger hclog.Logger, env []string, stdout io.Writer) (*host.Process, error) {
	set, inherit := append(append([]string(nil), env...), b.Env...), b.InheritEnv
	if pin, ok := b.builtinPin(c); ok {
		set, inherit = append(set, pin.Env...), pin.InheritEnv
		if pin.MemoryLimit != "" {
			set = append(set, "GOMEMLIMIT="+pin.MemoryLimit)
		}
	}
	// A pinned binary runs from the bytes checked at discovery (b.exe); SHA256 is left out
	// so that they are not read again from a file that may have changed since.
	return host.Launch(host.LaunchConfig{Path: b.Path, Args: b.Args, Executable: b.exe, Logger: logger,
		InheritEnv: inherit, Env: set, Stdout: stdout})
}
