// Command envplugin is a plugin for the pin and environment tests. Every time it starts
// (describe included) it appends a line to <its path>.ran: its variant (set at build time
// with -ldflags "-X main.variant=...", so that two builds differ in their sha256), its
// arguments and its environment. It is plugin NAME when installed as tda-plugin-NAME, and
// offers the sink NAME (dashes as underscores).
package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/tda-dev/tda/sdk"
)

var variant = "genuine"

// Run is one line of the .ran file.
type Run struct {
	Variant string   `json:"variant"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
}

type discard struct{}

func (discard) Write(context.Context, sdk.Batch) error { return nil }

func main() {
	line, _ := json.Marshal(Run{Variant: variant, Args: os.Args[1:], Env: os.Environ()})
	if f, err := os.OpenFile(os.Args[0]+".ran", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		_, _ = f.Write(append(line, '\n'))
		_ = f.Close()
	}
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "tda-plugin-")
	comp := sdk.SinkComponent(strings.ReplaceAll(name, "-", "_"), nil,
		func(*sdk.Config, sdk.Resources) (sdk.Sink, error) { return discard{}, nil })
	sdk.Serve(sdk.PluginInfo{Name: name, Version: "0.0.1"}, comp)
}
