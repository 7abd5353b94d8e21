package cli

import (
	"strings"

	"github.com/tda-dev/tda/sdk"
)

// builtinJSON is the plugins compiled into tda, as tda plugins -json lists them.
type builtinJSON struct {
	// Command is how tda runs them: its own executable and "plugin-serve".
	Command    string                 `json:"command"`
	Version    string                 `json:"version"`
	Protocol   int                    `json:"protocol"`
	Components []builtinComponentJSON `json:"components"`
}

type builtinComponentJSON struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Plugin  string `json:"plugin"`
	Version string `json:"version"`
	Summary string `json:"summary"`
	// Actions are the operator actions the component serves (sdk.Action).
	Actions []sdk.ActionDescription `json:"actions,omitempty"`
}

// listBuiltin describes the plugins compiled into tda; nil when there are none.
func (c *pluginsCommand) listBuiltin() *builtinJSON {
	b := c.env.Builtin
	if b == nil || b.Description == nil {
		return nil
	}
	d := b.Description
	out := &builtinJSON{Command: strings.Join(append([]string{b.Path}, b.Args...), " "), Version: d.Version,
		Protocol: sdk.ProtocolVersion, Components: []builtinComponentJSON{}}
	for _, comp := range d.Components {
		summary := ""
		if comp.Spec != nil {
			summary = comp.Spec.Summary
		}
		out.Components = append(out.Components, builtinComponentJSON{Kind: string(comp.Kind), Name: comp.Name,
			Plugin: comp.PluginName(d), Version: comp.PluginVersion, Summary: summary, Actions: comp.Actions})
	}
	return out
}

// printBuiltin prints the plugins compiled into tda.
func (c *pluginsCommand) printBuiltin(b *builtinJSON, docs bool) {
	c.env.Printf("Built into tda (%s; one process serves all their instances, a block with\n"+
		"isolate = true or a plugin memory_limit gets its own; a plugin binary below that offers\n"+
		"the same component replaces it):\n", b.Command)
	for i, comp := range b.Components {
		c.env.Printf("  %-9s %-10s %-9s %s\n", comp.Kind, comp.Name, comp.Plugin, comp.Summary)
		if len(comp.Actions) > 0 {
			c.env.Printf("  %-30s actions: %s\n", "", actionNames(comp.Actions))
		}
		if docs {
			c.env.Printf("%s", specDocs(c.env.Builtin.Description.Components[i]))
		}
	}
	c.env.Printf("\n")
}
