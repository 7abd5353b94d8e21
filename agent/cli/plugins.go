package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mitchellh/go-wordwrap"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
	"github.com/tda-dev/tda/version"
)

type pluginsCommand struct{ env *Env }

func (c *pluginsCommand) Synopsis() string { return "List the installed plugins and their components" }

func (c *pluginsCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda plugins [-config FILE] [-plugin-dir DIR]... [-docs | -json]

  Lists the plugins built into tda (served by tda plugin-serve, one process for
  all their instances), then every plugin binary found: its name, version, plugin
  protocol version, sha256 (for a pin in the config: plugin "NAME" { sha256 =
  "..." }) and the components it offers. A binary's component replaces a built-in
  one of the same kind and name. Only files named tda-plugin-* are plugins; other
  executables in a plugin directory are named with a warning.

  With -config, also lists which binary serves each block the configuration uses,
  plugin blocks with a path included.

Flags:
  -config FILE      The configuration: its agent.plugin_dir and plugin blocks.
  -plugin-dir DIR   A further directory to list (repeatable). The default directory
                    (agent.plugin_dir of -config, else "plugins" next to the tda
                    binary, or $TDA_PLUGIN_DIR) is always listed first; -dir is the same.
  -docs             Also print every component's configuration reference, and the
                    settings tda reads in every source, processor and sink block.
  -json             {"builtin": {command, version, protocol, components: [{kind,
                    name, plugin, version, summary}]},
                    "dirs": [{dir, plugins: [{path, name, version, protocol,
                    protocols, sdk, sha256, error, components: [{kind, name,
                    summary}]}], ignored}],
                    "used": [{address, binary, pinned, builtin, shared}]} (used
                    with -config only).
`)
}

// dirList is a repeatable -plugin-dir flag.
type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(v string) error { *d = append(*d, v); return nil }

func (c *pluginsCommand) Run(args []string) int {
	fs := c.env.FlagSet("plugins")
	var extra dirList
	fs.Var(&extra, "plugin-dir", "")
	fs.Var(&extra, "dir", "")
	path := fs.String("config", "", "")
	docs := fs.Bool("docs", false, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	base := ""
	// The config's plugin blocks: with them, pinned binaries are checked before anything of
	// them runs, here as in validate and run.
	var pins []pluginhost.Pin
	if *path != "" {
		cfg, diags := loader.LoadConfig(*path)
		if c.env.Diagnostics(cfg, diags) {
			return 1
		}
		base = cfg.Agent.PluginDir
		for _, p := range cfg.Plugins {
			pins = append(pins, loader.PinOf(p))
		}
	}
	if base == "" {
		base = pluginhost.DefaultDir()
	}
	var dirs []string
	// The default directory is listed when it exists, or when it is the only one: a missing
	// default is not worth an error while other directories were named.
	// With plugins built into tda, a missing default directory is no error at all.
	if _, err := os.Stat(base); err == nil || (len(extra) == 0 && c.env.Builtin == nil) {
		dirs = append(dirs, base)
	}
	for _, d := range extra {
		if filepath.Clean(d) != filepath.Clean(base) {
			dirs = append(dirs, d)
		}
	}
	failed := false
	var result pluginsJSON
	if result.Builtin = c.listBuiltin(); result.Builtin != nil && !*asJSON {
		c.printBuiltin(result.Builtin, *docs)
	}
	for i, dir := range dirs {
		var dirPins []pluginhost.Pin
		if dir == base {
			dirPins = pins
		}
		d, descs, ok, err := listDir(dir, dirPins)
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		failed = failed || !ok
		result.Dirs = append(result.Dirs, d)
		if !*asJSON {
			if i > 0 {
				c.env.Printf("\n")
			}
			c.printDir(d, descs, *docs)
		}
	}
	if *path != "" {
		used, ok := c.usedBy(*path, base)
		failed = failed || !ok
		result.Used = used
		if ok && !*asJSON {
			c.printUsed(*path, used)
		}
	}
	if *asJSON {
		if code := c.env.JSON(result); code != 0 {
			return code
		}
		if failed {
			return 1
		}
		return 0
	}
	if *docs {
		for _, kind := range []sdk.ComponentKind{sdk.KindSource, sdk.KindProcessor, sdk.KindSink} {
			c.env.Printf("\nSettings tda reads in every %s block, beside the plugin's own:\n", kind)
			c.env.Printf("%s", specDocs(sdk.ComponentDescription{Kind: kind, Spec: config.HostSpec(kind)}))
		}
	}
	if failed {
		return 1
	}
	return 0
}

// pluginsJSON is the stable shape of tda plugins -json.
type pluginsJSON struct {
	// Builtin are the plugins compiled into tda.
	Builtin *builtinJSON    `json:"builtin,omitempty"`
	Dirs    []pluginDirJSON `json:"dirs"`
	// Used is present with -config: the binary that serves each block in use.
	Used []pluginUseJSON `json:"used,omitempty"`
}

type pluginDirJSON struct {
	Dir     string       `json:"dir"`
	Plugins []pluginJSON `json:"plugins"`
	// Ignored are executables not named tda-plugin-*.
	Ignored []string `json:"ignored"`
}

type pluginJSON struct {
	Path    string `json:"path"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	// Protocol is the protocol version tda speaks with the plugin; Protocols are every
	// version the plugin serves.
	Protocol   int                   `json:"protocol,omitempty"`
	Protocols  []int                 `json:"protocols,omitempty"`
	SDK        string                `json:"sdk,omitempty"`
	SHA256     string                `json:"sha256"`
	Error      string                `json:"error,omitempty"`
	Components []pluginComponentJSON `json:"components"`
}

type pluginComponentJSON struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Summary string `json:"summary"`
	// Actions are the operator actions the component serves (sdk.Action).
	Actions []sdk.ActionDescription `json:"actions,omitempty"`
}

// actionNames lists a component's actions for the text output ("" for none).
func actionNames(actions []sdk.ActionDescription) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

type pluginUseJSON struct {
	Address string `json:"address"`
	Binary  string `json:"binary,omitempty"`
	Pinned  bool   `json:"pinned"`
	// Builtin: served by the plugins compiled into tda. InAgent: inside the agent's own
	// process (bundled_plugins = "in_agent"). Shared: in the one process its binary shares
	// among its instances. Neither: a process of its own.
	Builtin bool `json:"builtin,omitempty"`
	InAgent bool `json:"in_agent,omitempty"`
	Shared  bool `json:"shared,omitempty"`
}

// listDir describes the plugins of one directory, and the binaries pins name (checked
// before they run); ok is false when one of them is unusable.
func listDir(dir string, pins []pluginhost.Pin) (out pluginDirJSON, descs map[string][]sdk.ComponentDescription, ok bool, err error) {
	reg, err := pluginhost.Discover(context.Background(), dir, pins)
	if err != nil {
		return out, nil, false, err
	}
	defer reg.Close()
	out = pluginDirJSON{Dir: dir, Plugins: []pluginJSON{}, Ignored: []string{}}
	descs = map[string][]sdk.ComponentDescription{}
	ok = true
	for _, b := range reg.Binaries {
		sum, _ := host.FileSHA256(b.Path)
		p := pluginJSON{Path: b.Path, SHA256: sum, Components: []pluginComponentJSON{}}
		if b.Err != nil {
			ok = false
			p.Error = b.Err.Error()
		} else {
			d := b.Description
			p.Name, p.Version, p.Protocol, p.Protocols, p.SDK = d.Name, d.Version, b.Protocol, d.Served(), d.SDKVersion
			for _, comp := range d.Components {
				summary := ""
				if comp.Spec != nil {
					summary = comp.Spec.Summary
				}
				p.Components = append(p.Components, pluginComponentJSON{Kind: string(comp.Kind), Name: comp.Name, Summary: summary,
					Actions: comp.Actions})
			}
			descs[b.Path] = d.Components
		}
		out.Plugins = append(out.Plugins, p)
	}
	for _, s := range pluginhost.StrayExecutables(dir) {
		out.Ignored = append(out.Ignored, s)
	}
	return out, descs, ok, nil
}

// printDir prints one directory's plugins as text.
func (c *pluginsCommand) printDir(d pluginDirJSON, descs map[string][]sdk.ComponentDescription, docs bool) {
	c.env.Printf("Plugins in %s (tda %s speaks protocol %s):\n", d.Dir, version.Version, versionList(sdk.ProtocolVersions()))
	if len(d.Plugins) == 0 && c.env.Builtin != nil {
		c.env.Printf("  none (a plugin binary named %sNAME goes here)\n", pluginhost.BinaryPrefix)
	} else if len(d.Plugins) == 0 {
		c.env.Printf("  none; build them with `make build`\n")
	}
	for _, p := range d.Plugins {
		c.env.Printf("\n%s\n", filepath.Base(p.Path))
		if p.Error != "" {
			c.env.Printf("  error:    %s\n", p.Error)
			continue
		}
		c.env.Printf("  name:     %s\n  version:  %s\n  protocol: %d (serves %s; sdk %s)\n  sha256:   %s\n", p.Name, p.Version,
			p.Protocol, versionList(p.Protocols), p.SDK, p.SHA256)
		for i, comp := range p.Components {
			c.env.Printf("  %-9s %-10s %s\n", comp.Kind, comp.Name, comp.Summary)
			if len(comp.Actions) > 0 {
				c.env.Printf("  %-20s actions: %s\n", "", actionNames(comp.Actions))
			}
			if docs {
				c.env.Printf("%s", specDocs(descs[p.Path][i]))
			}
		}
	}
	for _, s := range d.Ignored {
		c.env.Printf("\n%s\n  ignored:  not named %s*, so tda never runs it\n", filepath.Base(s), pluginhost.BinaryPrefix)
	}
}

// usedBy returns, for each block the configuration uses, the binary that serves it.
func (c *pluginsCommand) usedBy(path, dir string) ([]pluginUseJSON, bool) {
	loaded, diags := loader.Load(context.Background(), path, loader.Options{PluginDir: dir, Builtin: c.env.Builtin})
	if c.env.Diagnostics(loaded.Config, diags) || loaded.Registry == nil {
		return nil, false
	}
	var out []pluginUseJSON
	for _, comp := range loaded.Config.Components {
		if !comp.Used {
			continue
		}
		u := pluginUseJSON{Address: comp.Address()}
		if b, desc, ok := loaded.Registry.Lookup(comp.Kind, comp.Type); ok {
			u.Binary, u.Pinned = b.Path, b.SHA256 != ""
			u.Builtin, u.Shared = b.Builtin, b.Shares(desc) && !comp.Isolate
			if _, linked := b.Linked(desc); linked && u.Shared && loaded.Config.Agent.BundledPlugins == config.BundledInAgent {
				u.InAgent, u.Shared = true, false
			}
		}
		out = append(out, u)
	}
	return out, true
}

func (c *pluginsCommand) printUsed(path string, used []pluginUseJSON) {
	c.env.Printf("\nUsed by %s:\n", path)
	width := 0
	for _, u := range used {
		width = max(width, len(u.Address))
	}
	for _, u := range used {
		switch {
		case u.Binary == "":
			c.env.Printf("  %-*s  no plugin offers it\n", width, u.Address)
		case u.Pinned:
			c.env.Printf("  %-*s  %s (pinned by sha256)\n", width, u.Address, u.Binary)
		case u.Builtin && u.InAgent:
			c.env.Printf("  %-*s  built into tda, inside the agent\n", width, u.Address)
		case u.Builtin && u.Shared:
			c.env.Printf("  %-*s  built into tda, shared process\n", width, u.Address)
		case u.Builtin:
			c.env.Printf("  %-*s  built into tda, process of its own\n", width, u.Address)
		default:
			c.env.Printf("  %-*s  %s\n", width, u.Address, u.Binary)
		}
	}
}

// specDocs renders a component's spec as reference text.
func specDocs(comp sdk.ComponentDescription) string {
	var b strings.Builder
	if comp.Spec == nil {
		return ""
	}
	if comp.Spec.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", indent(comp.Spec.Description, "      "))
	}
	if len(comp.Accepts) > 0 {
		fmt.Fprintf(&b, "      accepts events of kind: %s\n", strings.Join(comp.Accepts, ", "))
	}
	writeSpec(&b, comp.Spec, "      ")
	if comp.Spec.Example != "" {
		fmt.Fprintf(&b, "\n      Example:\n%s\n", indent(comp.Spec.Example, "        "))
	}
	b.WriteString("\n")
	return b.String()
}

func writeSpec(b *strings.Builder, spec *sdk.Spec, pad string) {
	for _, f := range spec.Fields {
		req := "optional"
		if f.Required {
			req = "required"
		} else if f.Default != nil {
			req = fmt.Sprintf("default %v", f.Default)
		}
		if f.Min != "" {
			req += ", at least " + f.Min
		}
		fmt.Fprintf(b, "%s%s (%s, %s)\n", pad, f.Name, f.Type, req)
		if f.Description != "" {
			fmt.Fprintf(b, "%s\n", indent(f.Description, pad+"    "))
		}
		if len(f.Enum) > 0 {
			fmt.Fprintf(b, "%s    one of: %s\n", pad, strings.Join(f.Enum, ", "))
		}
	}
	for _, blk := range spec.Blocks {
		labels := ""
		for _, l := range blk.Labels {
			labels += fmt.Sprintf(" %q", strings.ToUpper(l))
		}
		fmt.Fprintf(b, "%s%s%s { ... } (block", pad, blk.Name, labels)
		if blk.Repeated {
			b.WriteString(", repeatable")
		}
		if blk.Required {
			b.WriteString(", required")
		}
		b.WriteString(")\n")
		if blk.Description != "" {
			fmt.Fprintf(b, "%s\n", indent(blk.Description, pad+"    "))
		}
		if blk.Spec != nil {
			writeSpec(b, blk.Spec, pad+"    ")
		}
	}
}

func indent(s, pad string) string {
	lines := strings.Split(wordwrap.WrapString(s, 88), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

type versionCommand struct{ env *Env }

func (c *versionCommand) Synopsis() string { return "Print the version" }

func (c *versionCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda version [-json]

  Prints tda's version, commit, the plugin protocol versions it speaks and the SDK
  version. tda -version prints the same.

Flags:
  -json   One JSON object: {"version", "commit", "protocol", "protocols", "sdk"}.
`)
}

// versionInfo is the stable shape of tda version -json.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Protocol int    `json:"protocol"`
	// Protocols are every plugin protocol version tda speaks, oldest first; Protocol is the
	// newest of them.
	Protocols []int  `json:"protocols"`
	SDK       string `json:"sdk"`
}

func (c *versionCommand) Run(args []string) int {
	fs := c.env.FlagSet("version")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		c.env.Errorf("tda version takes no arguments; got %q.", fs.Arg(0))
		return 1
	}
	info := versionInfo{Version: version.Version, Commit: version.Commit, Protocol: sdk.ProtocolVersion,
		Protocols: sdk.ProtocolVersions(), SDK: sdk.SDKVersion}
	if *asJSON {
		return c.env.JSON(info)
	}
	c.env.Printf("tda %s\nplugin protocol %s, sdk %s\n", version.String(), versionList(sdk.ProtocolVersions()), sdk.SDKVersion)
	return 0
}

// versionList writes protocol versions as "1, 2".
func versionList(vs []int) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}
