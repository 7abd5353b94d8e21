// Package webhook is the tda sink that POSTs alert batches as JSON to any HTTP endpoint, for
// PagerDuty-, Opsgenie- or Teams-style receivers and in-house relays. Each request is signed:
// X-Tda-Signature carries "sha256=" and the hex HMAC-SHA256 of the body under a shared secret,
// and the body holds the same timestamp as the X-Tda-Timestamp header, so a receiver can
// reject forged requests and replays (see Verify and docs/alerting.md).
//
// The agent queues, de-duplicates and retries; this sink reports nil for 2xx, sdk.Retry with
// the receiver's Retry-After for 429 and 503, a plain error for other 5xx, 408, timeouts and
// connection failures, and sdk.Permanent for the other 3xx and 4xx answers.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/http/httpguts"

	"github.com/tda-dev/tda/plugins/internal/httppost"
	"github.com/tda-dev/tda/sdk"
)

// Headers set on every request.
const (
	HeaderSignature = "X-Tda-Signature"
	HeaderTimestamp = "X-Tda-Timestamp"
	HeaderDelivery  = "X-Tda-Delivery"
	// PayloadVersion is the version of the body's format.
	PayloadVersion = 1
	// MaxAlertsPerRequest is the most alerts the agent puts in one request.
	MaxAlertsPerRequest = 500
	// MinSecretBytes is the shortest secret accepted.
	MinSecretBytes = 16
)

// Spec is the webhook sink's configuration schema.
var Spec = &sdk.Spec{
	Summary: "POST alerts as signed JSON to an HTTP endpoint.",
	Description: "Each batch of alerts becomes one POST whose body is {\"version\", \"id\", " +
		"\"timestamp\", \"sink\", \"alerts\": [...]} with the alerts in tda's canonical JSON. " +
		"X-Tda-Signature is \"sha256=\" and the hex HMAC-SHA256 of the body under secret; " +
		"X-Tda-Timestamp repeats the body's timestamp; X-Tda-Delivery repeats its id, which " +
		"stays the same when the same alerts are sent again.",
	Fields: []sdk.Field{
		{Name: "url", Type: sdk.TypeString, Required: true, Sensitive: true,
			Description: "The endpoint (https://, or http:// to a loopback address). Often holds a token: use env() or file()."},
		{Name: "secret", Type: sdk.TypeString, Required: true, Sensitive: true,
			Description: "Shared secret for the HMAC-SHA256 signature, at least 16 bytes: use env(\"TDA_WEBHOOK_SECRET\") or file()."},
		{Name: "headers", Type: sdk.TypeStringMap, Sensitive: true,
			Description: "Extra request headers, e.g. { Authorization = \"GenieKey ...\" }."},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "10s",
			Description: "How long to wait for the endpoint to answer one request."},
	},
	Example: `sink "webhook" "pager" {
  url    = env("PAGER_WEBHOOK_URL")
  secret = env("TDA_WEBHOOK_SECRET")
  headers = {
    Authorization = env("PAGER_TOKEN")
  }
}`,
}

// Component returns the webhook sink.
func Component() sdk.Component {
	return sdk.SinkComponent("webhook", Spec, newSink).
		WithAccepts(sdk.KindAlert).WithQueue(sdk.QueueDurable).WithMaxBatch(MaxAlertsPerRequest)
}

// Sink posts alert batches to one endpoint.
type Sink struct {
	url      string
	secret   []byte
	headers  http.Header
	timeout  time.Duration
	instance string
	log      hclog.Logger

	client *http.Client
	now    func() time.Time
}

func newSink(c *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	target := strings.TrimSpace(c.String("url"))
	if err := httppost.CheckURL(target); err != nil {
		return nil, c.Errorf("url", "%v", err)
	}
	secret := c.String("secret")
	if len(secret) < MinSecretBytes {
		return nil, c.Errorf("secret", "secret must be at least %d bytes; generate one with: openssl rand -hex 32", MinSecretBytes)
	}
	headers := http.Header{}
	for k, v := range c.StringMap("headers") {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, c.Errorf("headers", "%q is not a valid header name", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, c.Errorf("headers", "the value of %s holds characters a header cannot carry (a line break?)", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case HeaderSignature, HeaderTimestamp, HeaderDelivery, "Content-Type", "Content-Length", "Host":
			return nil, c.Errorf("headers", "%s is set by tda and cannot be overridden", http.CanonicalHeaderKey(k))
		}
		headers.Set(k, v)
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return nil, c.Errorf("timeout", "timeout must be positive")
	}
	return &Sink{url: target, secret: []byte(secret), headers: headers, timeout: timeout,
		instance: res.Instance, log: res.Logger, now: time.Now}, nil
}

// Start prepares the HTTP client.
func (s *Sink) Start(context.Context) error {
	s.client = httppost.NewClient()
	return nil
}

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	return nil
}

// Write posts the batch's alerts as one signed request.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	if s.client == nil {
		_ = s.Start(ctx)
	}
	var alerts []*sdk.Event
	for i := range b.Events {
		if b.Events[i].Kind == sdk.KindAlert && b.Events[i].Alert != nil {
			alerts = append(alerts, &b.Events[i])
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	now := s.now()
	body, id := Body(alerts, s.instance, now)
	h := s.headers.Clone()
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "tda-webhook/1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderDelivery, id)
	h.Set(HeaderSignature, Sign(s.secret, body))
	resp, err := httppost.Post(ctx, s.client, s.url, body, h, s.timeout)
	if err != nil {
		if sdk.IsPermanent(err) {
			s.log.Error("cannot post to the webhook", "error", err)
		} else {
			s.log.Warn("the webhook did not answer; the agent will retry", "alerts", len(alerts), "error", err)
		}
		return err
	}
	reason := httppost.Reason(resp.Body)
	err = httppost.Outcome(resp, reason, s.now())
	switch {
	case err == nil:
		s.log.Debug("posted to the webhook", "alerts", len(alerts), "delivery", id)
	case sdk.IsPermanent(err):
		s.log.Error("the webhook refused the alerts permanently; they go to the fallback sink if one is configured",
			"endpoint", httppost.Redact(s.url), "status", resp.Status, "reason", reason, "alerts", len(alerts))
	default:
		after, _ := sdk.RetryAfter(err)
		s.log.Warn("the webhook failed; the agent will retry", "endpoint", httppost.Redact(s.url),
			"status", resp.Status, "reason", reason, "retry_after", after, "alerts", len(alerts))
	}
	if sdk.IsPermanent(err) {
		return sdk.Permanent(fmt.Errorf("webhook %s: %s", httppost.Redact(s.url), Refusal(resp.Status, reason)))
	}
	if err != nil {
		return fmt.Errorf("webhook %s: %w", httppost.Redact(s.url), err)
	}
	return nil
}

// Refusal is the one-line error for a permanent refusal: what happened, the endpoint's
// answer and the fix, e.g. "endpoint gone (404 not found): fix url".
func Refusal(status int, reason string) string {
	what, fix := "endpoint refused the alerts", "check url and the receiver's log"
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		what, fix = "endpoint refused the credentials", "fix secret or headers"
	case status == http.StatusNotFound || status == http.StatusGone:
		what, fix = "endpoint gone", "fix url"
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge ||
		status == http.StatusUnsupportedMediaType || status == http.StatusUnprocessableEntity:
		what, fix = "endpoint rejected the payload", "make the receiver accept tda's payload (version 1, see the webhook sink's README)"
	case status >= 300 && status < 400:
		what, fix = "endpoint redirects", "fix url to the final address"
	}
	answer := strconv.Itoa(status)
	if reason != "" {
		answer += " " + reason
	}
	return fmt.Sprintf("%s (%s): %s", what, answer, fix)
}

// Body returns the request body for alerts and its delivery id. The id is derived from the
// alerts' delivery keys, so sending the same alerts again gives the same id.
func Body(alerts []*sdk.Event, instance string, now time.Time) ([]byte, string) {
	h := sha256.New()
	for _, e := range alerts {
		h.Write([]byte(e.Alert.DeliveryKey()))
		h.Write([]byte{0})
	}
	id := hex.EncodeToString(h.Sum(nil)[:16])
	b := make([]byte, 0, 512*len(alerts)+128)
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, PayloadVersion, 10)
	b = append(b, `,"id":"`...)
	b = append(b, id...)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, `,"sink":`...)
	b = sdk.AppendJSONString(b, instance)
	b = append(b, `,"alerts":[`...)
	for i, e := range alerts {
		if i > 0 {
			b = append(b, ',')
		}
		b = e.AppendJSON(b)
	}
	b = append(b, "]}"...)
	return b, id
}

// Sign returns the X-Tda-Signature value for body: "sha256=" and the hex HMAC-SHA256.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Errors from Verify.
var (
	ErrBadSignature = errors.New("the signature does not match the body")
	ErrStale        = errors.New("the request is too old or from the future (replay?)")
)

// Payload is the body a receiver gets.
type Payload struct {
	Version   int               `json:"version"`
	ID        string            `json:"id"`
	Timestamp int64             `json:"timestamp"`
	Sink      string            `json:"sink"`
	Alerts    []json.RawMessage `json:"alerts"`
}

// Verify checks a received request as a receiver should: the signature over the raw body in
// constant time, the timestamp header against the body's, and the timestamp within tolerance
// of now. It returns the decoded payload; the receiver should also drop a payload whose ID it
// has already processed within the tolerance window.
func Verify(secret, body []byte, signature, timestamp string, now time.Time, tolerance time.Duration) (*Payload, error) {
	if !hmac.Equal([]byte(Sign(secret, body)), []byte(signature)) {
		return nil, ErrBadSignature
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("the body is not a tda payload: %w", err)
	}
	if strconv.FormatInt(p.Timestamp, 10) != timestamp {
		return nil, fmt.Errorf("%s %q does not match the signed timestamp %d", HeaderTimestamp, timestamp, p.Timestamp)
	}
	sent := time.Unix(p.Timestamp, 0)
	if d := now.Sub(sent); d > tolerance || d < -tolerance {
		return nil, fmt.Errorf("%w: sent %s, now %s", ErrStale, sent.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return &p, nil
}
