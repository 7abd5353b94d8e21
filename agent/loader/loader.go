// Package loader turns a config path into a ready configuration: it loads the HCL, finds the
// plugins, and decodes every component block with its plugin's schema. Every command that
// reads a config goes through it, so they all report the same diagnostics.
package loader

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/configs"
	"github.com/tda-dev/tda/sdk"
)

// DefaultConfigName is how the embedded default config is named in diagnostics.
const DefaultConfigName = "configs/agent.hcl"

// Loaded is a decoded configuration and the plugins that serve it.
type Loaded struct {
	Config   *config.Config
	Registry *pluginhost.Registry
}

// Options adjust Load.
type Options struct {
	// PluginDir overrides agent.plugin_dir.
	PluginDir string
	// Specs provides specs for components the agent runs in-process (not from plugins).
	Specs map[string]*sdk.Spec
}

// LoadConfig reads the config at path, or the embedded default when path is "".
func LoadConfig(path string) (*config.Config, hcl.Diagnostics) {
	if path == "" {
		return config.LoadBytes(DefaultConfigName, configs.Default)
	}
	return config.Load(path)
}

// Load reads the config, discovers the plugins and decodes every used component.
func Load(ctx context.Context, path string, opts Options) (*Loaded, hcl.Diagnostics) {
	cfg, diags := LoadConfig(path)
	if cfg == nil || cfg.ParseFailed {
		return &Loaded{Config: cfg}, diags
	}
	dir := opts.PluginDir
	if dir == "" {
		dir = cfg.Agent.PluginDir
	}
	if dir == "" {
		dir = pluginhost.DefaultDir()
	}
	var pins []pluginhost.Pin
	names := make([]string, 0, len(cfg.Plugins))
	for n := range cfg.Plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := cfg.Plugins[n]
		pins = append(pins, pluginhost.Pin{Name: p.Name, Path: p.Path, SHA256: p.SHA256, MemoryLimit: p.MemoryLimit})
	}
	reg, err := pluginhost.Discover(ctx, dir, pins)
	if err != nil {
		return &Loaded{Config: cfg}, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "Cannot load plugins", Detail: err.Error()})
	}
	// A plugin that shares no protocol version with this tda is named, as an error, on each
	// block that uses one of its components; it gets no warning of its own then.
	named := map[*pluginhost.Binary]bool{}
	for _, c := range cfg.Components {
		if _, ok := opts.Specs[string(c.Kind)+"."+c.Type]; ok {
			continue
		}
		if _, _, ok := reg.Lookup(c.Kind, c.Type); ok {
			continue
		}
		if b, ok := reg.Incompatible(c.Kind, c.Type); ok {
			named[b] = true
		}
	}
	for _, b := range reg.Binaries {
		if b.Err != nil && !named[b] {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Unusable plugin",
				Detail: fmt.Sprintf("%s: %v", filepath.Base(b.Path), b.Err)})
		}
	}
	// Every block is decoded, used or not: a mistake in a block no pipeline uses yet is still
	// a mistake.
	for _, c := range cfg.Components {
		spec, found := opts.Specs[string(c.Kind)+"."+c.Type]
		if !found {
			_, desc, ok := reg.Lookup(c.Kind, c.Type)
			if b, unusable := reg.Incompatible(c.Kind, c.Type); !ok && unusable {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
					Summary: "Plugin protocol mismatch",
					Detail:  fmt.Sprintf("The %s type %q comes from %s, which this tda cannot talk to: %v.", c.Kind, c.Type, b.Path, b.Err),
					Subject: c.TypeRange.Ptr()})
				continue
			}
			if !ok {
				detail := fmt.Sprintf("No plugin in %s offers a %s of type %q.", dir, c.Kind, c.Type)
				available := reg.Names(c.Kind)
				if s := sdk.Suggest(c.Type, available); s != "" {
					detail += fmt.Sprintf(" Did you mean %q?", s)
				} else if len(available) > 0 {
					detail += fmt.Sprintf(" Installed %ss: %v.", c.Kind, available)
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
					Summary: "Unknown " + string(c.Kind) + " type", Detail: detail, Subject: c.TypeRange.Ptr()})
				continue
			}
			spec = desc.Spec
		}
		diags = append(diags, cfg.Decode(c, spec)...)
	}
	return &Loaded{Config: cfg, Registry: reg}, diags
}
