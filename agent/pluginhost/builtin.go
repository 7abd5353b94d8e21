package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tda-dev/tda/sdk"
)

// Builtin is a binary whose components tda knows without running it to ask: the bundled
// plugins compiled into tda itself, served by `tda plugin-serve`. Its description comes
// from the program that built the agent (cmd/tda), so discovering it costs no process.
type Builtin struct {
	// Path is the executable and Args the arguments that make it serve the components.
	Path string
	Args []string
	// Description lists the components, each with the plugin it comes from.
	Description *sdk.Description
	// Plugins are the same plugins linked into the agent's program, which lets the agent run
	// their instances in its own process (agent bundled_plugins = "in_agent"); nil when the
	// agent can only reach them through Path.
	Plugins []sdk.Bundled
}

// DiscoverWithBuiltin is Discover with the components of builtin added: a binary of dir (or
// a pinned one) that offers a component takes precedence over the builtin one, so a plugin
// can still be replaced by a separate binary. Without builtin it is Discover.
//
// A plugin block that names a builtin plugin and has no binary of its own (no path, no
// sha256, and no tda-plugin-NAME in dir) applies to that plugin's builtin components: its
// memory_limit, env and inherit_env are those of their processes, one per instance (a limit
// and an environment are per process, and a block grants them to its plugin alone). One with
// a sha256 pin keeps its meaning (that exact binary or nothing), and the builtin does not
// serve that plugin.
func DiscoverWithBuiltin(ctx context.Context, dir string, pins []Pin, builtin *Builtin) (*Registry, error) {
	if builtin == nil {
		return Discover(ctx, dir, pins)
	}
	offered := map[string]bool{}
	for _, c := range builtin.Description.Components {
		offered[c.PluginName(builtin.Description)] = true
	}
	blocks := map[string]Pin{}
	pinned := map[string]bool{}
	var own []Pin
	for _, p := range pins {
		if p.Path == "" && p.SHA256 == "" && offered[p.Name] && !isFile(filepath.Join(dir, BinaryPrefix+p.Name)) {
			blocks[p.Name] = p
			continue
		}
		if p.SHA256 != "" || p.Path != "" {
			pinned[p.Name] = true
		}
		own = append(own, p)
	}
	var reg *Registry
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && len(own) == 0 {
		// The builtin plugins need no plugin directory.
		reg = &Registry{Dir: dir, components: map[string]*Binary{}}
	} else {
		var err error
		if reg, err = Discover(ctx, dir, own); err != nil {
			return nil, err
		}
	}
	b := &Binary{Path: builtin.Path, Args: builtin.Args, Description: builtin.Description, Builtin: true,
		pins: blocks}
	if len(builtin.Plugins) > 0 {
		b.linked = map[string]sdk.Component{}
		for _, p := range builtin.Plugins {
			for _, c := range p.Components {
				b.linked[string(c.Kind)+"."+c.Name] = c
			}
		}
	}
	v, ok := NegotiateProtocol(builtin.Description.Served(), sdk.ProtocolVersions())
	if !ok {
		reg.Close()
		return nil, fmt.Errorf("the plugins built into tda share no protocol version with it; rebuild tda")
	}
	b.Protocol = v
	reg.Binaries = append(reg.Binaries, b)
	for _, c := range builtin.Description.Components {
		key := string(c.Kind) + "." + c.Name
		// A plugin block with a path or a pin takes its plugin's place: the builtin one is
		// not used, even when the block's binary fails.
		if _, ok := reg.components[key]; ok || pinned[c.PluginName(builtin.Description)] {
			continue
		}
		reg.components[key] = b
	}
	return reg, nil
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

// builtinPin is the plugin block that names the plugin of c, a component of a Builtin.
func (b *Binary) builtinPin(c sdk.ComponentDescription) (Pin, bool) {
	if !b.Builtin {
		return Pin{}, false
	}
	p, ok := b.pins[c.PluginName(b.Description)]
	return p, ok
}

// Linked returns the component of a Builtin linked into the agent's program, which the agent
// may run in its own process: only one whose instances may share a process (Shares), since
// a plugin block that gives its plugin a memory limit or an environment asks for a process.
func (b *Binary) Linked(c sdk.ComponentDescription) (sdk.Component, bool) {
	if !b.Builtin || b.linked == nil || !b.Shares(c) {
		return sdk.Component{}, false
	}
	comp, ok := b.linked[string(c.Kind)+"."+c.Name]
	return comp, ok
}

// MemoryLimit is the memory limit a plugin block sets for the process of a component
// ("" for none).
func (b *Binary) MemoryLimit(c sdk.ComponentDescription) string {
	if p, ok := b.builtinPin(c); ok {
		return p.MemoryLimit
	}
	return b.memoryLimit
}

// Shares reports whether the instances of a component may share one process of b: the
// binary asks for it (sdk.ServeBundle), and no plugin block gives the component's plugin a
// memory limit or an environment (both are per process: such an instance gets a process of
// its own).
func (b *Binary) Shares(c sdk.ComponentDescription) bool {
	if b.Description == nil || !b.Description.SharedInstances || b.memoryLimit != "" {
		return false
	}
	_, blocked := b.builtinPin(c)
	return !blocked
}
