package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/tda-dev/tda/sdk/internal/peercred"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// ProtocolVersion is the newest major version of the plugin protocol this SDK speaks.
const ProtocolVersion = 1

// ProtocolVersions returns every major version of the plugin protocol this SDK serves (in a
// plugin) and speaks (in a host), oldest first. A plugin lists them in its description; a
// host picks the highest version both sides have, and go-plugin's handshake settles on the
// same one when the host launches the plugin. Dropping a version from this list is what
// makes old agents or old plugins unusable with this SDK: keep one as long as anyone runs it.
func ProtocolVersions() []int { return []int{ProtocolVersion} }

// SDKVersion is the version of this SDK.
const SDKVersion = "0.1.0"

// Handshake is the go-plugin handshake shared by the agent and every plugin. A binary started
// without it (e.g. by hand) explains that it is a plugin and exits.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "TDA_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "f3c1a2d4e5b6978812aa0c9d4e7f6b5a",
}

// PluginName is the name under which the protocol's services are dispensed.
const PluginName = "tda"

// MaxMessageBytes bounds one protocol message (a batch).
const MaxMessageBytes = 256 << 20

// Batches are large (up to a few MiB): with gRPC's defaults (64 KiB flow-control windows,
// 32 KiB socket buffers) a batch costs hundreds of window updates and syscalls. These
// settings let one batch cross in a handful. The read and write buffers are allocated per
// connection at both ends: 256 KiB each crosses a 1 MiB batch in four writes, with a quarter
// of the memory of 1 MiB buffers.
const (
	transportWindow = 32 << 20
	transportBuffer = 256 << 10
)

// ServerOptions are the gRPC server options of a plugin.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(serverCodec{proto: encoding.GetCodecV2("proto")}),
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.InitialWindowSize(transportWindow), grpc.InitialConnWindowSize(transportWindow),
		grpc.WriteBufferSize(transportBuffer), grpc.ReadBufferSize(transportBuffer),
	}
}

// DialOptions are the gRPC client options a host uses to talk to a plugin.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithInitialWindowSize(transportWindow), grpc.WithInitialConnWindowSize(transportWindow),
		grpc.WithWriteBufferSize(transportBuffer), grpc.WithReadBufferSize(transportBuffer),
	}
}

// PluginInfo names a plugin binary.
type PluginInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Description is what a plugin binary reports about itself (`<plugin> describe`).
type Description struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Protocol is the oldest protocol version the plugin serves. Hosts that read only this
	// field (tda before version negotiation, which all speak protocol 1) require it to equal
	// their own version, so a plugin that still serves protocol 1 keeps working with them.
	Protocol int `json:"protocol"`
	// Protocols lists every protocol version the plugin serves, oldest first; absent in the
	// descriptions of plugins built before version negotiation, which serve Protocol alone.
	Protocols  []int                  `json:"protocols,omitempty"`
	SDKVersion string                 `json:"sdk_version"`
	Components []ComponentDescription `json:"components"`
	// SharedInstances says one process of the binary serves several configured instances
	// (each call names its instance, see InstanceMetadataKey), and asks the host to share
	// it. Binaries served by Serve leave it unset: the host then starts one process per
	// instance. ServeBundle sets it.
	SharedInstances bool `json:"shared_instances,omitempty"`
}

// Served returns the protocol versions the plugin serves, oldest first, without repeats:
// Protocols, or for a description without the list, Protocol alone. Versions below 1 are
// not versions and are left out.
func (d *Description) Served() []int {
	vs := d.Protocols
	if len(vs) == 0 {
		vs = []int{d.Protocol}
	}
	out := make([]int, 0, len(vs))
	for _, v := range vs {
		if v >= 1 {
			out = append(out, v)
		}
	}
	sort.Ints(out)
	n := 0
	for i, v := range out {
		if i == 0 || v != out[n-1] {
			out[n] = v
			n++
		}
	}
	return out[:n]
}

// ComponentDescription is one component in a Description.
type ComponentDescription struct {
	Kind    ComponentKind `json:"kind"`
	Name    string        `json:"name"`
	Accepts []string      `json:"accepts,omitempty"`
	Queue   string        `json:"queue,omitempty"`
	// MaxBatch caps events per Write for a sink (0: the agent's default).
	MaxBatch int   `json:"max_batch,omitempty"`
	Spec     *Spec `json:"spec"`
	// Plugin and PluginVersion name the plugin the component comes from, in a binary that
	// bundles several plugins (ServeBundle); empty when it is the binary's own.
	Plugin        string `json:"plugin,omitempty"`
	PluginVersion string `json:"plugin_version,omitempty"`
	// Actions are the operator actions the component serves (service Actions).
	Actions []ActionDescription `json:"actions,omitempty"`
}

// Action returns the component's action of that name.
func (c ComponentDescription) Action(name string) (ActionDescription, bool) {
	for _, a := range c.Actions {
		if a.Name == name {
			return a, true
		}
	}
	return ActionDescription{}, false
}

// PluginName is the plugin the component comes from: Plugin, or the name of the binary
// that describes it (d).
func (c ComponentDescription) PluginName(d *Description) string {
	if c.Plugin != "" {
		return c.Plugin
	}
	return d.Name
}

// Find returns the component of that kind and name.
func (d *Description) Find(kind ComponentKind, name string) (ComponentDescription, bool) {
	for _, c := range d.Components {
		if c.Kind == kind && c.Name == name {
			return c, true
		}
	}
	return ComponentDescription{}, false
}

// Describe builds the Description of a set of components.
func Describe(info PluginInfo, components ...Component) *Description {
	versions := ProtocolVersions()
	d := &Description{Name: info.Name, Version: info.Version, Protocol: versions[0], Protocols: versions, SDKVersion: SDKVersion}
	for _, c := range components {
		spec := c.Spec
		if spec == nil {
			spec = &Spec{}
		}
		var actions []ActionDescription
		for _, a := range c.Actions {
			actions = append(actions, ActionDescription{Name: a.Name, Summary: a.Summary})
		}
		d.Components = append(d.Components, ComponentDescription{Kind: c.Kind, Name: c.Name,
			Accepts: c.Accepts, Queue: c.Queue, MaxBatch: c.MaxBatch, Spec: spec, Actions: actions})
	}
	sort.Slice(d.Components, func(i, j int) bool {
		if d.Components[i].Kind != d.Components[j].Kind {
			return d.Components[i].Kind < d.Components[j].Kind
		}
		return d.Components[i].Name < d.Components[j].Name
	})
	return d
}

// Bundled is one plugin inside a binary that serves several (ServeBundle).
type Bundled struct {
	Info       PluginInfo
	Components []Component
}

// DescribeBundle builds the Description of a binary that serves the components of several
// plugins: each component names its plugin, and the binary asks for shared processes.
func DescribeBundle(info PluginInfo, plugins ...Bundled) *Description {
	var all []Component
	origin := map[string]PluginInfo{}
	for _, p := range plugins {
		for _, c := range p.Components {
			all = append(all, c)
			origin[string(c.Kind)+"."+c.Name] = p.Info
		}
	}
	d := Describe(info, all...)
	d.SharedInstances = true
	for i := range d.Components {
		o := origin[string(d.Components[i].Kind)+"."+d.Components[i].Name]
		d.Components[i].Plugin, d.Components[i].PluginVersion = o.Name, o.Version
	}
	return d
}

// Serve runs the plugin binary: it answers `describe` on the command line with the JSON
// description, and otherwise serves the components to the agent until the agent stops it.
// The agent starts one process of the binary per configured instance.
func Serve(info PluginInfo, components ...Component) {
	serve(info, os.Args[1:], Describe(info, components...), components)
}

// ServeBundle serves the components of several plugins from one binary, as Serve does, with
// args the binary's arguments after the ones that chose this mode (`describe` prints the
// description). One process serves several configured instances: the agent starts one and
// routes every instance's calls to it, except for instances it isolates (see
// docs/plugins.md). A component that must not share its process with others is better
// served by Serve from a binary of its own.
func ServeBundle(info PluginInfo, args []string, plugins ...Bundled) {
	var all []Component
	for _, p := range plugins {
		all = append(all, p.Components...)
	}
	serve(info, args, DescribeBundle(info, plugins...), all)
}

func serve(info PluginInfo, args []string, desc *Description, components []Component) {
	if err := checkComponents(components); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", info.Name, err)
		os.Exit(2)
	}
	if len(args) > 0 && args[0] == "describe" {
		out, _ := json.MarshalIndent(desc, "", "  ")
		fmt.Println(string(out))
		return
	}
	level := hclog.LevelFromString(os.Getenv("TDA_PLUGIN_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: info.Name, Level: level, JSONFormat: true, Output: os.Stderr})
	watchParent(logger)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(info, desc, logger, true, components...),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, localCredentials()...)
			opts = append(opts, ServerOptions()...)
			return grpc.NewServer(opts...)
		},
		Logger: logger,
	})
}

// localCredentials admits only the agent that started the plugin: the process of the same
// user at the other end of the Unix socket that is the plugin's parent, as the kernel reports
// it (see internal/peercred). An agent that asked for AutoMTLS (it passes its certificate in
// PLUGIN_CLIENT_CERT: older agents, or systems without peer credentials) gets TLS from
// go-plugin instead.
func localCredentials() []grpc.ServerOption {
	if !peercred.Supported || os.Getenv("PLUGIN_CLIENT_CERT") != "" {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(peercred.Credentials{Check: peercred.SameUser(uint32(os.Getuid()), os.Getppid)})}
}

func checkComponents(components []Component) error {
	if len(components) == 0 {
		return fmt.Errorf("no components to serve")
	}
	seen := map[string]bool{}
	for _, c := range components {
		key := string(c.Kind) + "." + c.Name
		if seen[key] {
			return fmt.Errorf("component %s declared twice", key)
		}
		seen[key] = true
		if c.Spec != nil {
			if err := c.Spec.Check(); err != nil {
				return fmt.Errorf("component %s: %w", key, err)
			}
		}
		if c.newSource == nil && c.newProcessor == nil && c.newSink == nil {
			return fmt.Errorf("component %s has no constructor", key)
		}
		if err := checkActions(c.Actions); err != nil {
			return fmt.Errorf("component %s: %w", key, err)
		}
	}
	return nil
}

// PluginSets returns the go-plugin plugin sets that serve components. Serve uses it; test
// harnesses use it with go-plugin's in-process test mode.
func PluginSets(info PluginInfo, logger hclog.Logger, components ...Component) map[int]plugin.PluginSet {
	return pluginSets(info, Describe(info, components...), logger, false, components...)
}

// pluginSets returns the plugin sets, one per protocol version served; encoded says the gRPC
// server uses ServerOptions (its codec reads the encoded requests).
func pluginSets(info PluginInfo, desc *Description, logger hclog.Logger, encoded bool, components ...Component) map[int]plugin.PluginSet {
	sets := map[int]plugin.PluginSet{}
	for _, v := range ProtocolVersions() {
		sets[v] = plugin.PluginSet{PluginName: &grpcPlugin{info: info, desc: desc, logger: logger, components: components, encoded: encoded}}
	}
	return sets
}

// NewServer returns a gRPC server that serves components as a plugin binary does (Serve),
// for hosts that run a plugin inside their own process over a real connection, such as
// sdktest.
func NewServer(info PluginInfo, logger hclog.Logger, components ...Component) *grpc.Server {
	return newGRPCServer(info, Describe(info, components...), logger, components)
}

// NewBundleServer is NewServer for a binary that bundles several plugins (ServeBundle).
func NewBundleServer(info PluginInfo, logger hclog.Logger, plugins ...Bundled) *grpc.Server {
	var all []Component
	for _, p := range plugins {
		all = append(all, p.Components...)
	}
	return newGRPCServer(info, DescribeBundle(info, plugins...), logger, all)
}

func newGRPCServer(info PluginInfo, desc *Description, logger hclog.Logger, components []Component) *grpc.Server {
	s := grpc.NewServer(ServerOptions()...)
	_ = (&grpcPlugin{info: info, desc: desc, logger: logger, components: components, encoded: true}).GRPCServer(nil, s)
	return s
}

// ClientPluginSets returns the plugin sets a host uses to dispense the protocol connection,
// one per protocol version it speaks: go-plugin offers them all to the plugin, which answers
// with the highest it serves too.
func ClientPluginSets() map[int]plugin.PluginSet {
	sets := map[int]plugin.PluginSet{}
	for _, v := range ProtocolVersions() {
		sets[v] = plugin.PluginSet{PluginName: &grpcPlugin{}}
	}
	return sets
}

// grpcPlugin registers the protocol's services on the plugin side and hands the raw client
// connection to the host side.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	info       PluginInfo
	desc       *Description
	logger     hclog.Logger
	components []Component
	encoded    bool
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	logger := p.logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	tdav1.RegisterInfoServer(s, &infoServer{desc: p.desc})
	newInstanceMux(p.info, logger, p.components, p.encoded).register(s)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return c, nil
}

// watchParent exits the plugin when the agent that started it is gone (e.g. killed with -9),
// so no orphaned plugin keeps files or sockets open.
func watchParent(logger hclog.Logger) {
	parent := os.Getppid()
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != parent {
				logger.Warn("the agent is gone; exiting")
				os.Exit(0)
			}
		}
	}()
}
