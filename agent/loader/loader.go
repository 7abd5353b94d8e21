// Package loader turns a config path into a ready configuration: it loads the HCL, finds the
// plugins, and decodes every component block with its plugin's schema. Every command that
// reads a config goes through it, so they all report the same diagnostics.
package loader

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

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
	// Builtin are the plugins compiled into tda; a plugin binary in the plugin directory
	// replaces a builtin component it offers too.
	Builtin *pluginhost.Builtin
	// SkipUnknown leaves the blocks whose plugin is not found undecoded, without an error:
	// for the commands that use some blocks only (the control commands reach the snapshot
	// blocks' actions, and read nothing of the others).
	SkipUnknown bool
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
		pins = append(pins, PinOf(cfg.Plugins[n]))
	}
	for _, p := range pluginhost.StrayExecutables(dir) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Executable ignored in plugin_dir",
			Detail: fmt.Sprintf("%s is not named %s*, so tda never runs it. Rename it to %s%s if it is a "+
				"plugin.", p, pluginhost.BinaryPrefix, pluginhost.BinaryPrefix, filepath.Base(p))})
	}
	reg, err := pluginhost.DiscoverWithBuiltin(ctx, dir, pins, opts.Builtin)
	switch {
	case err != nil && (opts.SkipUnknown || len(cfg.Components) == 0 && len(pins) == 0):
		// A config without any block a plugin serves (the agent block alone, as an operator's
		// command may read it) needs no plugin directory; nor does a command that skips the
		// blocks whose plugin is not found.
		reg = &pluginhost.Registry{Dir: dir}
	case err != nil:
		return &Loaded{Config: cfg}, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "Cannot load plugins", Detail: err.Error()})
	}
	for _, b := range reg.Binaries {
		if b.Err != nil {
			if d := pinDiagnostic(cfg, b); d != nil {
				diags = append(diags, d)
				continue
			}
			d := &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Unusable plugin",
				Detail: fmt.Sprintf("%s: %v", filepath.Base(b.Path), b.Err)}
			if p := pluginBlockFor(cfg, b.Path); p != nil {
				// A plugin block names the plugin by its own name: the name the binary answers
				// describe with (tda plugins lists it).
				d.Subject = p.Range.Ptr()
				if b.Description != nil && b.Description.Name != p.Name {
					d.Detail += fmt.Sprintf(". The label of a plugin block is the plugin's own name: write "+
						"plugin %q, or point path at the binary of plugin %q.", b.Description.Name, p.Name)
				}
			}
			diags = append(diags, d)
		}
	}
	var unknownType []*config.Component
	// Every block is decoded, used or not: a mistake in a block no pipeline uses yet is still
	// a mistake.
	for _, c := range cfg.Components {
		spec, found := opts.Specs[string(c.Kind)+"."+c.Type]
		if !found {
			_, desc, ok := reg.Lookup(c.Kind, c.Type)
			if !ok && opts.SkipUnknown {
				continue
			}
			if !ok {
				detail := fmt.Sprintf("No plugin in %s offers a %s of type %q.", dir, c.Kind, c.Type)
				available := reg.Names(c.Kind)
				if b := unusableOffering(reg, c.Kind, c.Type); b != nil {
					detail = fmt.Sprintf("%s offers a %s of type %q but cannot be used: %v (see the "+
						"warning about it).", filepath.Base(b.Path), c.Kind, c.Type, b.Err)
				} else if failed := failedPins(cfg, reg); len(failed) > 0 {
					detail += fmt.Sprintf(" The plugin block %s is not used until the error about it is "+
						"fixed, and nothing it offers is known: fix that error first.", strings.Join(failed, ", "))
				} else if s := sdk.Suggest(c.Type, available); s != "" {
					detail += fmt.Sprintf(" Did you mean %q?", s)
				} else if len(available) > 0 {
					detail += fmt.Sprintf(" Installed %ss: %s.", c.Kind, strings.Join(available, ", "))
				} else {
					detail += " No plugin offers one: build them with `make build`, or set agent.plugin_dir."
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
					Summary: "Unknown " + string(c.Kind) + " type", Detail: detail, Subject: c.TypeRange.Ptr()})
				unknownType = append(unknownType, c)
				continue
			}
			spec = desc.Spec
		}
		diags = append(diags, cfg.Decode(c, spec)...)
	}
	markFollowOns(diags, unknownType, reg)
	cfg.Registry = reg
	return &Loaded{Config: cfg, Registry: reg}, diags
}

// markFollowOns rewrites the error of a reference that names a known plugin type when a block
// of the same kind and name has an unknown type: the typo is in the block, and the reference
// is right. Without this, the hint would ask the user to copy the typo into the reference.
func markFollowOns(diags hcl.Diagnostics, unknownType []*config.Component, reg *pluginhost.Registry) {
	for _, d := range diags {
		u, ok := d.Extra.(config.UndefinedReference)
		if !ok {
			continue
		}
		if _, _, known := reg.Lookup(u.Ref.Kind, u.Ref.Type); !known {
			continue
		}
		for _, c := range unknownType {
			if c.Kind == u.Ref.Kind && c.Name == u.Ref.Name {
				d.Summary = "Reference to a block with an unknown type"
				d.Detail = fmt.Sprintf("This follows from the error at %s: the block %s %q %q has an "+
					"unknown type. Change that block's type to %q; this reference is then right as it is.",
					c.TypeRange.String(), c.Kind, c.Type, c.Name, u.Ref.Type)
				break
			}
		}
	}
}

// pluginBlockFor returns the plugin block whose path is the binary at path, or nil.
func pluginBlockFor(cfg *config.Config, path string) *config.Plugin {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	for _, p := range cfg.Plugins {
		if p.Path == "" {
			continue
		}
		if pa, err := filepath.Abs(p.Path); err == nil && pa == abs {
			return p
		}
	}
	return nil
}

// unusableOffering returns a binary that offers kind.typ but was set aside (a plugin block
// naming it wrongly, a failed describe), or nil.
func unusableOffering(reg *pluginhost.Registry, kind sdk.ComponentKind, typ string) *pluginhost.Binary {
	for _, b := range reg.Binaries {
		if b.Err == nil || b.Description == nil {
			continue
		}
		for _, c := range b.Description.Components {
			if c.Kind == kind && c.Name == typ {
				return b
			}
		}
	}
	return nil
}
