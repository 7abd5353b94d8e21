package sdk

import (
	"context"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// One plugin process may serve several configured instances, as a provider serves many
// resources: every call names its instance in the gRPC metadata under InstanceMetadataKey,
// and the process keeps one set of services per instance, created by the instance's
// Configure and dropped by its Close. A call without the key is for the unnamed instance:
// that is how a host that runs one process per instance (every tda before shared processes)
// talks, and it keeps working unchanged.

// InstanceMetadataKey is the gRPC metadata key that names the instance a call is for (its
// address, e.g. "sink.jsonl.audit").
const InstanceMetadataKey = "tda-instance"

// MaxInstancesPerProcess bounds the instances one plugin process serves at once: a Configure
// past it is refused (ResourceExhausted), and the host starts another process.
const MaxInstancesPerProcess = 256

// instanceServices are the services of one instance: what a plugin process served alone
// before processes were shared.
type instanceServices struct {
	source    *sourceServer
	processor *processorServer
	sink      *sinkServer
	actions   *actionServer
}

// instanceMux routes each call to the services of the instance it names.
type instanceMux struct {
	info       PluginInfo
	logger     hclog.Logger
	components []Component
	encoded    bool
	// handoffs holds the batches the process's sources sent, for its processors.
	handoffs *handoffStore

	mu sync.Mutex
	// instances holds at most MaxInstancesPerProcess entries: Configure adds one, Close
	// removes it.
	instances map[string]*instanceServices
}

func newInstanceMux(info PluginInfo, logger hclog.Logger, components []Component, encoded bool) *instanceMux {
	return &instanceMux{info: info, logger: logger, components: components, encoded: encoded,
		handoffs: newHandoffStore(), instances: map[string]*instanceServices{}}
}

// instanceOf is the instance a call names; "" when it names none.
func instanceOf(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	if v := md.Get(InstanceMetadataKey); len(v) > 0 {
		return v[0]
	}
	return ""
}

// lookup returns the services of the instance ctx names. create makes them when missing
// (Configure); otherwise a missing instance is an error the host can act on.
func (m *instanceMux) lookup(ctx context.Context, create bool) (*instanceServices, error) {
	name := instanceOf(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if set, ok := m.instances[name]; ok {
		return set, nil
	}
	if !create {
		if name == "" {
			// The unnamed instance answers as an unconfigured process always has.
			return m.newServices(), nil
		}
		return nil, status.Errorf(codes.FailedPrecondition, "instance %q is not configured in this plugin process", name)
	}
	if len(m.instances) >= MaxInstancesPerProcess {
		return nil, status.Errorf(codes.ResourceExhausted,
			"this plugin process already serves %d instances; give the instance a process of its own (isolate = true)",
			MaxInstancesPerProcess)
	}
	set := m.newServices()
	m.instances[name] = set
	return set, nil
}

func (m *instanceMux) newServices() *instanceServices {
	srv := newServer(m.info, m.logger, m.components)
	return &instanceServices{source: &sourceServer{s: srv, encoded: m.encoded, handoffs: m.handoffs},
		processor: &processorServer{s: srv, handoffs: m.handoffs}, sink: &sinkServer{s: srv}, actions: &actionServer{s: srv}}
}

// forget drops the instance ctx names, after its Close.
func (m *instanceMux) forget(ctx context.Context) {
	m.mu.Lock()
	delete(m.instances, instanceOf(ctx))
	m.mu.Unlock()
}

// count is the number of configured instances.
func (m *instanceMux) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.instances)
}

// register serves the Source, Processor, Sink and Actions services on s, each call routed to its
// instance's services.
func (m *instanceMux) register(s *grpc.Server) {
	processor := &tdav1.Processor_ServiceDesc
	if m.encoded {
		processor = processorServiceDesc()
	}
	s.RegisterService(m.route(&tdav1.Source_ServiceDesc, func(set *instanceServices) any { return set.source }), m)
	s.RegisterService(m.route(processor, func(set *instanceServices) any { return set.processor }), m)
	s.RegisterService(m.route(&tdav1.Sink_ServiceDesc, func(set *instanceServices) any { return set.sink }), m)
	s.RegisterService(m.route(&tdav1.Actions_ServiceDesc, func(set *instanceServices) any { return set.actions }), m)
}

// route returns desc with every handler calling the original one on the services of the
// call's instance, which pick selects.
func (m *instanceMux) route(desc *grpc.ServiceDesc, pick func(*instanceServices) any) *grpc.ServiceDesc {
	d := *desc
	d.HandlerType = (*any)(nil)
	d.Methods = slices.Clone(desc.Methods)
	for i := range d.Methods {
		handler, name := d.Methods[i].Handler, d.Methods[i].MethodName
		d.Methods[i].Handler = func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			set, err := m.lookup(ctx, name == "Configure")
			if err != nil {
				return nil, err
			}
			resp, err := handler(pick(set), ctx, dec, ic)
			if name == "Close" {
				// Closed or not, the host is done with the instance.
				m.forget(ctx)
			}
			return resp, err
		}
	}
	d.Streams = slices.Clone(desc.Streams)
	for i := range d.Streams {
		handler := d.Streams[i].Handler
		d.Streams[i].Handler = func(_ any, stream grpc.ServerStream) error {
			set, err := m.lookup(stream.Context(), false)
			if err != nil {
				return err
			}
			return handler(pick(set), stream)
		}
	}
	return &d
}
