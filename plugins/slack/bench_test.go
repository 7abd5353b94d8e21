package slack_test

import (
	"fmt"
	"testing"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/plugins/slack"
	"github.com/tda-dev/tda/sdk"
)

// BenchmarkPayload measures formatting one message for a batch of alerts.
func BenchmarkPayload(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			events := make([]sdk.Event, n)
			for i := range events {
				events[i] = alert("mass_password_reset", fmt.Sprintf("actor-%d <!channel>", i))
			}
			alerts := alerttext.Alerts(events)
			f := slack.Format{PanelURL: "https://tda.example.com/alerts/{fingerprint}", ExcerptLines: 10}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := slack.Payload(alerts, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
