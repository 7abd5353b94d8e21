package loader

import (
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk/host"
)

// PinOf turns a plugin block into what discovery needs of it.
func PinOf(p *config.Plugin) pluginhost.Pin {
	return pluginhost.Pin{Name: p.Name, Path: p.Path, SHA256: p.SHA256, MemoryLimit: p.MemoryLimit,
		Env: p.Env, InheritEnv: p.InheritEnv}
}

// pinDiagnostic is the config error for a binary that a plugin block pins (sha256) or
// points at (path) and that cannot be used, at the attribute that names it; nil for other
// binaries, whose trouble is a warning. Nothing takes such a plugin's place: the operator
// named this binary, so the configuration is wrong until it is fixed.
func pinDiagnostic(cfg *config.Config, b *pluginhost.Binary) *hcl.Diagnostic {
	if b.Pin == "" {
		return nil
	}
	p := cfg.Plugins[b.Pin]
	if p == nil || (p.SHA256 == "" && p.Path == "") {
		return nil
	}
	subject := p.Range.Ptr()
	if p.PathRange != nil {
		subject = p.PathRange
	}
	var pe *host.PinError
	if !errors.As(b.Err, &pe) && b.Description != nil && b.Description.Name != p.Name {
		// The binary works but is another plugin: the warning about the block's label says
		// which name to write.
		return nil
	}
	if pe == nil {
		// The file was checked (or not pinned) but does not work as a plugin.
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unusable plugin",
			Detail: fmt.Sprintf("%v. The plugin block %q names this binary, so no other is used in its place: "+
				"fix path, or install the plugin there.", b.Err, p.Name), Subject: subject}
	}
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Subject: subject}
	switch pe.Failure {
	case host.PinMismatch:
		d.Summary = "Plugin does not match its pin"
		d.Detail = fmt.Sprintf("%s has sha256 %s, not the pinned %s; nothing of it was run. If you upgraded "+
			"or rebuilt the plugin yourself, put the new checksum in sha256 (`sha256sum %s` prints it); "+
			"otherwise the file was replaced: find out by whom before you trust it.", pe.Path, pe.Got, pe.Want, pe.Path)
		if p.SHA256Range != nil {
			d.Subject = p.SHA256Range
		}
	case host.PinMissing:
		d.Summary = "Pinned plugin not found"
		d.Detail = fmt.Sprintf("There is no file at %s, and no other binary is used in place of a pinned one. "+
			"Install the plugin there, or correct path.", pe.Path)
	default:
		d.Summary = "Pinned plugin unreadable"
		d.Detail = fmt.Sprintf("%v; nothing of it was run. Make it a regular file the agent's user can read.", pe)
	}
	return d
}

// failedPins names the plugin blocks whose binary is an error (pinDiagnostic), as
// `"name"`, sorted.
func failedPins(cfg *config.Config, reg *pluginhost.Registry) []string {
	var out []string
	for _, b := range reg.Binaries {
		if b.Err != nil && pinDiagnostic(cfg, b) != nil {
			out = append(out, fmt.Sprintf("%q", b.Pin))
		}
	}
	sort.Strings(out)
	return out
}
