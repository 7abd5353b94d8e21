package host_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

func events(prefix string, n int, start time.Time) []sdk.Event {
	out := make([]sdk.Event, n)
	for i := range out {
		out[i] = sdk.Event{Kind: sdk.KindLog, Source: "file." + prefix, Origin: prefix + ".log",
			Line: []byte(fmt.Sprintf("%s %d", prefix, i))}
		if i%3 != 1 {
			out[i].Time = start.Add(time.Duration(i) * time.Second)
		}
		if i%4 == 0 {
			out[i].Fields = map[string]string{"i": fmt.Sprint(i)}
		}
	}
	return out
}

// Concat joins wire batches without decoding; decoding the result gives every event of every
// part, in order, with times, strings and fields intact.
func TestConcatKeepsEveryEvent(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	a := events("a", 7, t0)
	b := events("b", 0, t0)
	c := events("c", 5, t0.Add(-48*time.Hour))
	alert := []sdk.Event{{Kind: sdk.KindAlert, Time: t0, Alert: &sdk.Alert{Rule: "r", Fingerprint: "f"}}}
	got := host.Concat(host.WireBatch(sdk.EncodeBatch(a)), host.NewBatch(b), host.WireBatch(sdk.EncodeBatch(c)),
		host.NewBatch(alert)).Events()
	want := append(append(append(append([]sdk.Event(nil), a...), b...), c...), alert...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d events, want %d:\n%+v", len(got), len(want), got)
	}
}

func TestFilterAndKinds(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	b := host.WireBatch(sdk.EncodeBatch(append(events("a", 3, t0),
		sdk.Event{Kind: sdk.KindAlert, Alert: &sdk.Alert{Rule: "r"}})))
	if k := b.KindCounts(); k[sdk.KindLog] != 3 || k[sdk.KindAlert] != 1 {
		t.Fatalf("kinds %v", k)
	}
	if b.Filter(func(string) bool { return true }) != b {
		t.Fatal("filtering nothing out should return the batch itself")
	}
	alerts := b.Filter(func(k string) bool { return k == sdk.KindAlert })
	if alerts.Len() != 1 || alerts.Events()[0].Alert.Rule != "r" {
		t.Fatalf("filtered %+v", alerts.Events())
	}
}

func TestShareCopiesDecodedEvents(t *testing.T) {
	b := host.NewBatch(events("a", 2, time.Time{}))
	s := b.Share()
	s.Events()[0].Line[0] = 'X'
	s.Events()[0].SetField("x", "y")
	if b.Events()[0].Line[0] == 'X' || b.Events()[0].Field("x") != "" {
		t.Fatal("a shared batch changed the original")
	}
}
