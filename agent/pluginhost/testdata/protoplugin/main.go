// Command protoplugin is a plugin for the protocol negotiation tests. Its file name says which
// protocol versions it serves: tda-plugin-v1-2 serves 1 and 2, tda-plugin-v3-4 serves 3 and
// 4, and tda-plugin-old describes itself as plugins built before negotiation did (one
// integer, no list) and serves 1. Every version is served by the SDK's protocol 1 services:
// the tests are about which version the two sides settle on, not about what differs.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tda-dev/tda/sdk"
)

type discard struct{}

func (discard) Write(context.Context, sdk.Batch) error { return nil }

func main() {
	tag := strings.TrimPrefix(filepath.Base(os.Args[0]), "tda-plugin-")
	versions := []int{1}
	if tag != "old" {
		versions = nil
		for _, f := range strings.Split(strings.TrimPrefix(tag, "v"), "-") {
			v, err := strconv.Atoi(f)
			if err != nil {
				fmt.Fprintf(os.Stderr, "protoplugin: cannot read versions from the name %q\n", tag)
				os.Exit(2)
			}
			versions = append(versions, v)
		}
	}
	info := sdk.PluginInfo{Name: "proto-" + tag, Version: "0.0.1"}
	comp := sdk.SinkComponent("proto_"+strings.ReplaceAll(tag, "-", "_"), nil,
		func(*sdk.Config, sdk.Resources) (sdk.Sink, error) { return discard{}, nil })
	if len(os.Args) > 1 && os.Args[1] == "describe" {
		d := sdk.Describe(info, comp)
		var out []byte
		if tag == "old" {
			// The description of a plugin built before negotiation: no "protocols" key.
			m := map[string]any{"name": d.Name, "version": d.Version, "protocol": 1, "sdk_version": "0.0.9",
				"components": d.Components}
			out, _ = json.MarshalIndent(m, "", "  ")
		} else {
			d.Protocol, d.Protocols = versions[0], versions
			out, _ = json.MarshalIndent(d, "", "  ")
		}
		fmt.Println(string(out))
		return
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: info.Name, JSONFormat: true, Output: os.Stderr})
	set := sdk.PluginSets(info, logger, comp)[sdk.ProtocolVersion]
	sets := map[int]plugin.PluginSet{}
	for _, v := range versions {
		sets[v] = set
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sets,
		GRPCServer:       func(opts []grpc.ServerOption) *grpc.Server { return grpc.NewServer(opts...) },
		Logger:           logger,
	})
}
