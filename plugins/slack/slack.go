// Package slack is the tda sink that posts alerts to a Slack channel through an incoming
// webhook: one Block Kit message per batch (the agent gathers alerts arriving within a sink's
// group_interval into one batch), with a plain-text fallback, every piece of log-derived text
// escaped, Slack's size limits respected and at most one message per second per webhook.
//
// Queueing, de-duplication, retries with backoff and fallback to another sink are the agent's
// work; this sink only tells it what happened: nil when Slack took the message, sdk.Retry with
// Slack's Retry-After on 429, a plain error for 5xx, timeouts and connection failures, and
// sdk.Permanent for the 4xx answers no retry can fix (invalid_payload, no_service,
// channel_is_archived, invalid_token, ...).
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/plugins/internal/httppost"
	"github.com/tda-dev/tda/sdk"
)

// Spec is the slack sink's configuration schema.
var Spec = &sdk.Spec{
	Summary: "Post alerts to Slack through an incoming webhook.",
	Description: "Each batch of alerts becomes one Block Kit message: severity and rule in the " +
		"header; count, window, key, origin, first and last seen; the excerpt; the explanation; " +
		"and a link to the control panel. Log text is escaped so it can never ping a channel or " +
		"draw a link. At most one message per message_interval per webhook; Slack's Retry-After " +
		"is honoured. Permanent refusals (no_service, channel_is_archived, invalid_payload, " +
		"invalid_token, ...) are logged with the reason and handed to the sink's fallback.",
	Fields: []sdk.Field{
		{Name: "webhook_url", Type: sdk.TypeString, Required: true, Sensitive: true,
			Description: "The incoming webhook URL (https://hooks.slack.com/services/...). It is a secret: use env(\"SLACK_WEBHOOK_URL\") or file(\"/run/secrets/slack\")."},
		{Name: "panel_url", Type: sdk.TypeString,
			Description: "The control panel's URL. Each alert links to it; \"{fingerprint}\" in it is replaced by the alert's fingerprint."},
		{Name: "mention", Type: sdk.TypeString,
			Description: "A Slack mention added to messages with a firing alert of one of mention_severities, e.g. \"<!here>\", \"<!channel>\" or \"<!subteam^S0123ABC>\"."},
		{Name: "mention_severities", Type: sdk.TypeStringList, Default: []string{sdk.SeverityHigh},
			Description: "Severities that get the mention."},
		{Name: "excerpt_lines", Type: sdk.TypeInt, Default: 10,
			Description: "Log lines shown per alert (at most 5 per alert when a message holds several)."},
		{Name: "message_interval", Type: sdk.TypeDuration, Default: "1s",
			Description: "Minimum time between two messages to this webhook. Slack allows about one per second."},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "10s",
			Description: "How long to wait for Slack to answer one message."},
	},
	Example: `sink "slack" "oncall" {
  webhook_url    = env("SLACK_WEBHOOK_URL")
  panel_url      = "https://tda.example.com/alerts/{fingerprint}"
  mention        = "<!here>"
  group_interval = "10s"
  fallback       = sink.email.ops
  fallback_after = "60s"
}`,
}

// Component returns the slack sink. Instances created from the same Component value share
// one rate limit per webhook URL.
func Component() sdk.Component {
	p := newPacers()
	return sdk.SinkComponent("slack", Spec, func(c *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
		return newSink(c, res, p)
	}).WithAccepts(sdk.KindAlert).WithQueue(sdk.QueueDurable).WithMaxBatch(MaxAlertsPerMessage)
}

// Sink posts alert batches to one webhook.
type Sink struct {
	webhook  string
	format   Format
	interval time.Duration
	timeout  time.Duration
	log      hclog.Logger
	pacers   *pacers

	pacer  *pacer
	client *http.Client
	now    func() time.Time
}

func newSink(c *sdk.Config, res sdk.Resources, p *pacers) (*Sink, error) {
	webhook := strings.TrimSpace(c.String("webhook_url"))
	if err := httppost.CheckURL(webhook); err != nil {
		return nil, c.Errorf("webhook_url", "%v", err)
	}
	panel := c.String("panel_url")
	if panel != "" {
		if err := alerttext.CheckPanelURL(panel); err != nil {
			return nil, c.Errorf("panel_url", "%v", err)
		}
	}
	if n := c.Int("excerpt_lines"); n < 1 || n > 100 {
		return nil, c.Errorf("excerpt_lines", "excerpt_lines must be between 1 and 100, not %d", n)
	}
	interval := c.Duration("message_interval")
	if interval < time.Second {
		return nil, c.Errorf("message_interval", "message_interval must be at least 1s: Slack disables webhooks that post faster")
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return nil, c.Errorf("timeout", "timeout must be positive")
	}
	return &Sink{
		webhook: webhook,
		format: Format{PanelURL: panel, Mention: c.String("mention"),
			MentionSeverities: c.StringList("mention_severities"), ExcerptLines: int(c.Int("excerpt_lines"))},
		interval: interval,
		timeout:  timeout,
		log:      res.Logger,
		pacers:   p,
		now:      time.Now,
	}, nil
}

// Start prepares the HTTP client.
func (s *Sink) Start(context.Context) error {
	s.client = httppost.NewClient()
	s.pacer = s.pacers.get(s.webhook, s.interval)
	return nil
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	return nil
}

// Write posts the batch's alerts as one message.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	if s.client == nil {
		if err := s.Start(ctx); err != nil {
			return err
		}
	}
	alerts := alerttext.Alerts(b.Events)
	if len(alerts) == 0 {
		if len(b.Events) > 0 {
			s.log.Debug("batch holds no alerts; nothing to post", "events", len(b.Events))
		}
		return nil
	}
	body, err := Payload(alerts, s.format)
	if err != nil {
		return sdk.Permanent(fmt.Errorf("encode the Slack message: %w", err))
	}
	done, err := s.pacer.acquire(ctx, s.now)
	if err != nil {
		return err
	}
	// After outcome: a Retry-After in the answer is recorded before the next message's turn.
	defer done()
	resp, err := httppost.Post(ctx, s.client, s.webhook, body,
		http.Header{"Content-Type": {"application/json; charset=utf-8"}}, s.timeout)
	if err != nil {
		if sdk.IsPermanent(err) {
			s.log.Error("cannot post to Slack", "error", err)
			return err
		}
		s.log.Warn("Slack did not answer; the agent will retry", "alerts", len(alerts), "error", err)
		return err
	}
	return s.outcome(resp, len(alerts))
}

// outcome classifies Slack's answer and logs what the operator should know.
func (s *Sink) outcome(resp *httppost.Response, alerts int) error {
	now := s.now()
	reason := Reason(resp)
	err := httppost.Outcome(resp, reason, now)
	switch {
	case err == nil:
		s.log.Debug("posted to Slack", "alerts", alerts)
		return nil
	case resp.Status == http.StatusTooManyRequests:
		after, ok := sdk.RetryAfter(err)
		if !ok {
			// Slack puts the delay in the JSON body when the header is missing.
			if d, found := bodyRetryAfter(resp.Body); found {
				after, ok = d, true
				err = sdk.Retry(err, d)
			}
		}
		if ok {
			s.pacer.pause(now.Add(after))
		}
		s.log.Warn("Slack rate-limited this webhook; nothing more is sent before its Retry-After",
			"retry_after", after, "alerts", alerts)
		return fmt.Errorf("Slack: %w", err)
	case sdk.IsPermanent(err):
		s.log.Error("Slack refused the message permanently; it goes to the fallback sink if one is configured",
			"status", resp.Status, "reason", reason, "what_to_do", Advice(resp.Status, reason), "alerts", alerts)
		// This error is what the agent's state and dead letters show: it says what happened
		// and what to change.
		return sdk.Permanent(errors.New(Refusal(resp.Status, reason)))
	default:
		if after, ok := sdk.RetryAfter(err); ok {
			s.pacer.pause(now.Add(after))
		}
		s.log.Warn("Slack failed; the agent will retry", "status", resp.Status, "reason", reason, "alerts", alerts)
		return fmt.Errorf("Slack: %w", err)
	}
}

// Payload encodes the message for alerts as the webhook's JSON body.
func Payload(alerts []*sdk.Event, f Format) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Build(alerts, f)); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Reason is Slack's error code from a response body ("no_service", "rate_limited", ...).
func Reason(resp *httppost.Response) string {
	body := bytes.TrimSpace(resp.Body)
	if len(body) > 0 && body[0] == '{' {
		var j struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil && j.Error != "" {
			return httppost.Reason([]byte(j.Error))
		}
	}
	return httppost.Reason(body)
}

func bodyRetryAfter(body []byte) (time.Duration, bool) {
	var j struct {
		RetryAfter *float64 `json:"retry_after"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &j) != nil || j.RetryAfter == nil || *j.RetryAfter < 0 || *j.RetryAfter > 86400 {
		return 0, false
	}
	return time.Duration(*j.RetryAfter * float64(time.Second)), true
}

// Refusal is the one-line error for a permanent refusal: what happened, Slack's answer, and
// the fix, e.g. "webhook revoked (404 no_service): fix webhook_url".
func Refusal(status int, reason string) string {
	what, fix := "Slack refused the message", "check webhook_url and the Slack app's configuration"
	switch reason {
	case "no_service", "no_team", "team_disabled":
		what, fix = "webhook revoked", "fix webhook_url"
	case "invalid_token", "token_revoked", "token_expired":
		what, fix = "webhook token revoked", "fix webhook_url"
	case "channel_is_archived":
		what, fix = "channel archived", "unarchive the channel or fix webhook_url"
	case "channel_not_found":
		what, fix = "channel deleted", "fix webhook_url"
	case "action_prohibited", "posting_to_general_channel_denied":
		what, fix = "posting restricted by a workspace admin", "ask the admin or fix webhook_url"
	case "user_not_found":
		what, fix = "webhook's user removed", "fix webhook_url"
	case "invalid_payload", "too_many_attachments", "missing_text_or_fallback_or_attachments", "no_text":
		what, fix = "message rejected as malformed", "report a bug in tda with the agent log"
	default:
		if status >= 300 && status < 400 {
			what, fix = "webhook redirects", "fix webhook_url"
		}
	}
	answer := fmt.Sprint(status)
	if reason != "" {
		answer += " " + reason
	}
	return fmt.Sprintf("%s (%s): %s", what, answer, fix)
}

// Advice tells the operator what to do about a permanent refusal.
func Advice(status int, reason string) string {
	switch reason {
	case "invalid_payload", "too_many_attachments", "missing_text_or_fallback_or_attachments", "no_text":
		return "Slack could not read the message; this is a bug in tda, please report it with the agent log"
	case "no_service", "no_team", "team_disabled":
		return "the webhook was removed or disabled: create a new incoming webhook and update webhook_url"
	case "channel_not_found":
		return "the webhook's channel no longer exists: create a webhook for an existing channel"
	case "channel_is_archived":
		return "the webhook's channel is archived: unarchive it or create a webhook for another channel"
	case "invalid_token", "token_revoked", "token_expired":
		return "the webhook's token was revoked: create a new incoming webhook and update webhook_url"
	case "action_prohibited", "posting_to_general_channel_denied":
		return "a workspace admin restricts posting to this channel: ask them, or use another channel"
	case "user_not_found":
		return "the webhook's user is gone: create a new incoming webhook"
	}
	if status >= 300 && status < 400 {
		return "webhook_url redirects: use the URL Slack gave when the webhook was created"
	}
	return "check webhook_url and the Slack app's configuration"
}
