package main

import (
	"os"
	"runtime/debug"
	"time"
	_ "time/tzdata" // maintenance windows and log time zones work on hosts without tzdata

	"github.com/tda-dev/tda/agent/startpages"
	"github.com/tda-dev/tda/plugins/console"
	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/docker"
	"github.com/tda-dev/tda/plugins/email"
	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/plugins/jsonl"
	"github.com/tda-dev/tda/plugins/logfile"
	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/plugins/schedule"
	"github.com/tda-dev/tda/plugins/slack"
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/plugins/webhook"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/version"
)

// pluginServeCommand makes tda serve its bundled plugins to the agent that started it
// (`tda plugin-serve describe` prints what it serves).
const pluginServeCommand = "plugin-serve"

// bundleName is the name the bundled plugins' binary describes itself with.
const bundleName = "bundled"

// bundled lists every plugin compiled into tda: the ones under plugins/. A plugin binary
// in the plugin directory that offers one of their components replaces it.
func bundled() []sdk.Bundled {
	v := version.Version
	return []sdk.Bundled{
		{Info: sdk.PluginInfo{Name: "console", Version: v}, Components: []sdk.Component{console.Component()}},
		{Info: sdk.PluginInfo{Name: "detect", Version: detect.Version}, Components: detect.Components()},
		{Info: sdk.PluginInfo{Name: "docker", Version: v}, Components: []sdk.Component{docker.Component()}},
		{Info: sdk.PluginInfo{Name: "email", Version: v}, Components: []sdk.Component{email.Component()}},
		{Info: sdk.PluginInfo{Name: "file", Version: file.Version}, Components: []sdk.Component{file.Component()}},
		{Info: sdk.PluginInfo{Name: "jsonl", Version: v}, Components: []sdk.Component{jsonl.Component()}},
		{Info: sdk.PluginInfo{Name: "logfile", Version: v}, Components: []sdk.Component{logfile.Component()}},
		{Info: sdk.PluginInfo{Name: "nats", Version: v}, Components: nats.Components()},
		{Info: sdk.PluginInfo{Name: "schedule", Version: v}, Components: []sdk.Component{schedule.Component()}},
		{Info: sdk.PluginInfo{Name: "slack", Version: v}, Components: []sdk.Component{slack.Component()}},
		{Info: sdk.PluginInfo{Name: "snapshot", Version: v}, Components: []sdk.Component{snapshot.Component()}},
		{Info: sdk.PluginInfo{Name: "webhook", Version: v}, Components: []sdk.Component{webhook.Component()}},
	}
}

func describeBundleOf(plugins []sdk.Bundled) *sdk.Description {
	return sdk.DescribeBundle(sdk.PluginInfo{Name: bundleName, Version: version.Version}, plugins...)
}

// bundleGCPercent is the shared plugin process's GOGC, as agentGCPercent is the agent's
// (agent/cli/run.go): its heap is mostly batches it receives, encodes and lets go, and
// collecting at 50 % growth keeps its peak during a fast tail about a sixth lower for a few
// percent more CPU (500,000 lines, two cores).
const bundleGCPercent = 50

// releaseStartupAfter is when the shared plugin process gives back the pages of the binary
// its start-up used: by then the agent has described and configured every instance (its
// own start-up takes a few hundred milliseconds).
const releaseStartupAfter = 2 * time.Second

func serveBundle(args []string) {
	if len(args) == 0 || args[0] != "describe" {
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(bundleGCPercent)
		}
		time.AfterFunc(releaseStartupAfter, func() { _, _ = startpages.Release() })
	}
	sdk.ServeBundle(sdk.PluginInfo{Name: bundleName, Version: version.Version}, args, bundled()...)
}
