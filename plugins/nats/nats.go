// Package nats is the tda plugin for fleet detection over NATS JetStream: sink "nats" on the
// edge agents publishes detection events, partitioned by rule key, with message ids that make
// republishing harmless; source "nats" on the detector agents reads the partitions, shared
// among the detectors through leases in a JetStream key-value bucket. See docs/fleet.md.
package nats

import "github.com/tda-dev/tda/sdk"

// Components returns the plugin's components: sink "nats" and source "nats".
func Components() []sdk.Component {
	return []sdk.Component{SinkComponent(), SourceComponent()}
}
