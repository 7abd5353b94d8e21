package sdk

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tda-dev/tda/sdk/internal/peercred"
)

func TestServedProtocols(t *testing.T) {
	for _, c := range []struct {
		d    Description
		want []int
	}{
		{Description{Protocol: 1}, []int{1}},                            // a plugin built before negotiation
		{Description{Protocol: 1, Protocols: []int{1, 2}}, []int{1, 2}}, // the list is what counts
		{Description{Protocol: 1, Protocols: []int{3, 2, 3}}, []int{2, 3}},
		{Description{Protocols: []int{0, -2, 4}}, []int{4}},
		{Description{}, []int{}},
	} {
		if got := c.d.Served(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v: Served() = %v, want %v", c.d, got, c.want)
		}
	}
}

type nopSink struct{}

func (nopSink) Write(context.Context, Batch) error { return nil }

// A description lists every version served, and keeps the single integer old hosts read: the
// oldest version, which those hosts (all of protocol 1) require.
func TestDescribeListsTheProtocols(t *testing.T) {
	d := Describe(PluginInfo{Name: "x", Version: "1"}, SinkComponent("x", nil, func(*Config, Resources) (Sink, error) { return nopSink{}, nil }))
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	versions := ProtocolVersions()
	if raw["protocol"] != float64(versions[0]) {
		t.Fatalf("protocol %v, want %d", raw["protocol"], versions[0])
	}
	list, _ := raw["protocols"].([]any)
	if len(list) != len(versions) {
		t.Fatalf("protocols %v, want %v", raw["protocols"], versions)
	}
	for i, v := range versions {
		if list[i] != float64(v) {
			t.Fatalf("protocols %v, want %v", list, versions)
		}
	}
	if got := PluginSets(PluginInfo{Name: "x"}, nil); len(got) != len(versions) {
		t.Fatalf("plugin sets for %d versions, want %d", len(got), len(versions))
	}
	if got := ClientPluginSets(); len(got) != len(versions) {
		t.Fatalf("client plugin sets for %d versions, want %d", len(got), len(versions))
	}
}

// TestLocalCredentials: a plugin checks its peer by the kernel's word unless the agent asked
// for AutoMTLS by passing its certificate (then go-plugin's TLS is the only credential: a
// second one would replace it).
func TestLocalCredentials(t *testing.T) {
	for _, c := range []struct {
		cert string
		want int
	}{
		{"", 1},
		{"-----BEGIN CERTIFICATE-----", 0},
	} {
		t.Setenv("PLUGIN_CLIENT_CERT", c.cert)
		want := c.want
		if !peercred.Supported {
			want = 0
		}
		if got := len(localCredentials()); got != want {
			t.Fatalf("PLUGIN_CLIENT_CERT=%q: %d credential options, want %d", c.cert, got, want)
		}
	}
}
