package config

import (
	"github.com/tda-dev/tda/sdk"
)

// HostSpec documents the attributes and blocks tda itself reads in a component block of the
// given kind, beside the plugin's own: `tda plugins -docs` prints it after the plugins'
// references. A test keeps it in step with the schemas the decoder uses.
func HostSpec(kind sdk.ComponentKind) *sdk.Spec {
	switch kind {
	case sdk.KindSink:
		return sinkHostSpec
	case sdk.KindProcessor:
		return &sdk.Spec{Fields: []sdk.Field{callTimeoutField, maxAttemptsField, isolateField}}
	case sdk.KindSource:
		return &sdk.Spec{Fields: []sdk.Field{callTimeoutField, isolateField}}
	}
	return nil
}

var callTimeoutField = sdk.Field{Name: "call_timeout", Type: sdk.TypeDuration, Default: sdk.FormatDuration(DefaultCallTimeout),
	Min:         sdk.FormatDuration(MinCallTimeout),
	Description: "Deadline of each call to the plugin; a call past it is a hung plugin, killed and restarted."}

var maxAttemptsField = sdk.Field{Name: "max_attempts", Type: sdk.TypeInt, Default: DefaultMaxAttempts,
	Description: "How often one batch may crash, panic or hang the plugin (a processor: or fail) before it is set aside as a dead letter."}

var isolateField = sdk.Field{Name: "isolate", Type: sdk.TypeBool, Default: false,
	Description: "Run the instance in a plugin process of its own. The plugins built into tda otherwise serve all their instances from one process, which a crash or hang of one instance restarts with all of them."}

var sinkHostSpec = &sdk.Spec{
	Summary: "Delivery settings tda applies to every sink, whatever its plugin.",
	Fields: []sdk.Field{
		{Name: "kinds", Type: sdk.TypeStringList,
			Description: "The event kinds this sink takes (log, alert, audit, ...); default: what the plugin accepts."},
		{Name: "queue", Type: sdk.TypeString, Enum: []string{sdk.QueueMemory, sdk.QueueDurable},
			Description: "Where batches wait for the sink: in memory, or durable in the state store (survives restarts); default: what the plugin asks for."},
		{Name: "fallback", Type: sdk.TypeString,
			Description: "A reference to another sink (sink.TYPE.NAME) that gets what this one cannot deliver."},
		{Name: "fallback_after", Type: sdk.TypeDuration, Default: sdk.FormatDuration(DefaultFallbackAfter),
			Description: "How long a batch may fail before it also goes to the fallback."},
		{Name: "group_interval", Type: sdk.TypeDuration,
			Description: "Alerts of one rule and key within this interval are sent as one message."},
		callTimeoutField,
		maxAttemptsField,
		isolateField,
	},
	Blocks: []sdk.Block{
		{Name: "batch", Description: "How large a batch sent to the plugin may be.", Spec: &sdk.Spec{Fields: []sdk.Field{
			{Name: "max_events", Type: sdk.TypeInt, Default: DefaultMaxEvents, Description: "Events in one batch."},
			{Name: "max_bytes", Type: sdk.TypeInt, Default: DefaultMaxBytes, Description: "Bytes of lines in one batch."},
		}}},
		{Name: "retry", Description: "Exponential backoff between attempts of a failed batch.", Spec: &sdk.Spec{Fields: []sdk.Field{
			{Name: "initial", Type: sdk.TypeDuration, Default: sdk.FormatDuration(DefaultRetryInitial),
				Min: sdk.FormatDuration(MinRetryInitial), Description: "The first wait."},
			{Name: "max", Type: sdk.TypeDuration, Default: sdk.FormatDuration(DefaultRetryMax), Description: "The longest wait; at least initial."},
		}}},
		{Name: "buffer", Description: "The sink's bounded buffer between the pipelines and its plugin.", Spec: &sdk.Spec{Fields: []sdk.Field{
			{Name: "max_size", Type: sdk.TypeString, Default: "16MiB", Description: "Bytes of events held in memory."},
			{Name: "when_full", Type: sdk.TypeString, Enum: whenFullValues,
				Description: "What happens to a batch that does not fit: block (hold the pipeline), spill (to disk, up to max_disk_size), drop (count and report). Default: drop for a sink that takes only log events, block for the others."},
			{Name: "max_disk_size", Type: sdk.TypeString, Default: "1GiB", Description: "Bytes on disk for spill and for a durable queue."},
		}}},
	},
}
