package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/webhook"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

const secret = "0123456789abcdef0123456789abcdef"

var t0 = time.Date(2026, 11, 29, 10, 15, 29, 769230769, time.UTC)

func alert(rule, key string) sdk.Event {
	return sdk.Event{
		Time: t0.Add(13 * time.Second), Kind: sdk.KindAlert, Source: "file.hosts", Origin: "app.log",
		Alert: &sdk.Alert{Rule: rule, Severity: sdk.SeverityHigh, State: sdk.StateFiring, Key: key,
			Count: 14, Threshold: 10, Window: time.Minute, FirstSeen: t0, LastSeen: t0.Add(13 * time.Second),
			Excerpt: []string{"password_changed actor=<!channel>"}, Fingerprint: "fp-" + rule + "-" + key,
			Explanation: "what it means"},
	}
}

// receiver is an endpoint that checks signatures the way docs/alerting.md tells receivers to,
// written independently of the sink's own helpers.
type receiver struct {
	srv    *httptest.Server
	status int
	header map[string]string

	mu  sync.Mutex
	got []request
}

type request struct {
	Header   http.Header
	Body     []byte
	Verified bool
}

func newReceiver(t *testing.T, status int, header map[string]string) *receiver {
	r := &receiver{status: status, header: header}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	verified := hmac.Equal([]byte(want), []byte(req.Header.Get("X-Tda-Signature")))
	var p struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
	}
	_ = json.Unmarshal(body, &p)
	ts, _ := strconv.ParseInt(req.Header.Get("X-Tda-Timestamp"), 10, 64)
	if ts != p.Timestamp || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		verified = false
	}
	r.mu.Lock()
	r.got = append(r.got, request{Header: req.Header.Clone(), Body: body, Verified: verified})
	r.mu.Unlock()
	for k, v := range r.header {
		w.Header().Set(k, v)
	}
	if !verified {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(r.status)
	fmt.Fprint(w, http.StatusText(r.status))
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

func (r *receiver) url() string { return r.srv.URL + "/hooks/SECRETPATH" }

func config(url string) string {
	return fmt.Sprintf("url = %q\nsecret = %q\nheaders = { Authorization = \"GenieKey k-123\" }\n", url, secret)
}

func TestSignedPostVerifies(t *testing.T) {
	r := newReceiver(t, http.StatusAccepted, nil)
	s := sdktest.NewSink(t, webhook.Component(), config(r.url()), sdktest.WithInstance("sink.webhook.pager"))
	if err := s.Write(alert("mass_password_reset", "alice"), alert("bulk_deletion", "")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	got := r.requests()
	if len(got) != 1 || !got[0].Verified {
		t.Fatalf("requests %+v, want one verified", got)
	}
	req := got[0]
	if req.Header.Get("Authorization") != "GenieKey k-123" || req.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", req.Header)
	}
	// The sink's own Verify agrees, and the body holds the alerts in canonical JSON.
	p, err := webhook.Verify([]byte(secret), req.Body, req.Header.Get("X-Tda-Signature"), req.Header.Get("X-Tda-Timestamp"), time.Now(), 5*time.Minute)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if p.Version != 1 || p.Sink != "sink.webhook.pager" || len(p.Alerts) != 2 || p.ID != req.Header.Get("X-Tda-Delivery") {
		t.Fatalf("payload %+v", p)
	}
	var e sdk.Event
	if err := json.Unmarshal(p.Alerts[0], &e); err != nil || e.Alert == nil || e.Alert.Rule != "mass_password_reset" || e.Alert.Excerpt[0] != "password_changed actor=<!channel>" {
		t.Fatalf("first alert %s (%v)", p.Alerts[0], err)
	}
	want := alert("mass_password_reset", "alice")
	if string(p.Alerts[0]) != string(want.AppendJSON(nil)) {
		t.Fatalf("alert JSON\n%s\nis not the canonical\n%s", p.Alerts[0], want.AppendJSON(nil))
	}
}

func TestVerifyRejectsTamperingAndReplays(t *testing.T) {
	now := time.Now()
	body, _ := webhook.Body([]*sdk.Event{ptr(alert("r", "k"))}, "sink.webhook.x", now)
	sig := webhook.Sign([]byte(secret), body)
	ts := strconv.FormatInt(now.Unix(), 10)
	if _, err := webhook.Verify([]byte(secret), body, sig, ts, now, 5*time.Minute); err != nil {
		t.Fatalf("genuine request: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), `"count":14`, `"count":1`, 1))
	if _, err := webhook.Verify([]byte(secret), tampered, sig, ts, now, 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	if _, err := webhook.Verify([]byte("another secret of 32 bytes......"), body, sig, ts, now, 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := webhook.Verify([]byte(secret), body, sig, strconv.FormatInt(now.Unix()+60, 10), now, 5*time.Minute); err == nil {
		t.Fatalf("a timestamp header that differs from the signed one was accepted")
	}
	if _, err := webhook.Verify([]byte(secret), body, sig, ts, now.Add(10*time.Minute), 5*time.Minute); !errors.Is(err, webhook.ErrStale) {
		t.Fatalf("replayed after 10 minutes: %v", err)
	}
	// The delivery id is the same for the same alerts, whenever they are sent.
	again, _ := webhook.Body([]*sdk.Event{ptr(alert("r", "k"))}, "sink.webhook.x", now.Add(time.Hour))
	var a, b webhook.Payload
	_ = json.Unmarshal(body, &a)
	_ = json.Unmarshal(again, &b)
	if a.ID != b.ID || a.ID == "" {
		t.Fatalf("ids %q and %q differ", a.ID, b.ID)
	}
}

func ptr(e sdk.Event) *sdk.Event { return &e }

func TestStatusCodesMapToOutcomes(t *testing.T) {
	tests := []struct {
		status int
		header map[string]string
		want   string
		after  time.Duration
	}{
		{200, nil, "ok", 0},
		{204, nil, "ok", 0},
		{400, nil, "permanent", 0},
		{403, nil, "permanent", 0},
		{404, nil, "permanent", 0},
		{410, nil, "permanent", 0},
		{302, map[string]string{"Location": "https://example.com/"}, "permanent", 0},
		{429, map[string]string{"Retry-After": "3"}, "retry-after", 3 * time.Second},
		{503, map[string]string{"Retry-After": "120"}, "retry-after", 2 * time.Minute},
		{429, nil, "transient", 0},
		{408, nil, "transient", 0},
		{500, nil, "transient", 0},
		{502, nil, "transient", 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.header), func(t *testing.T) {
			r := newReceiver(t, tt.status, tt.header)
			s := sdktest.NewSink(t, webhook.Component(), config(r.url()), sdktest.WithMode(sdktest.Direct))
			err := s.Write(alert("bulk_deletion", ""))
			after, hasAfter := sdk.RetryAfter(err)
			switch tt.want {
			case "ok":
				if err != nil {
					t.Fatalf("Write = %v", err)
				}
			case "permanent":
				if !sdk.IsPermanent(err) {
					t.Fatalf("Write = %v, want permanent", err)
				}
			case "retry-after":
				if err == nil || sdk.IsPermanent(err) || !hasAfter || after != tt.after {
					t.Fatalf("Write = %v (after %v), want sdk.Retry after %v", err, after, tt.after)
				}
			case "transient":
				if err == nil || sdk.IsPermanent(err) || hasAfter {
					t.Fatalf("Write = %v, want transient", err)
				}
			}
			if err != nil && strings.Contains(err.Error(), "SECRETPATH") {
				t.Fatalf("error %q reveals the URL's path", err)
			}
			if got := r.requests(); len(got) != 1 || !got[0].Verified {
				t.Fatalf("receiver got %+v", got)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"short secret", "url = \"https://x.example/h\"\nsecret = \"short\"", "2:10: Invalid secret: secret must be at least 16 bytes"},
		{"http", fmt.Sprintf("url = \"http://x.example/TOKEN\"\nsecret = %q", secret), "1:7: Invalid url: the URL must use https://"},
		{"own header", fmt.Sprintf("url = \"https://x.example/h\"\nsecret = %q\nheaders = { \"X-Tda-Signature\" = \"x\" }", secret), "X-Tda-Signature is set by tda"},
		{"bad header", fmt.Sprintf("url = \"https://x.example/h\"\nsecret = %q\nheaders = { \"A\" = \"x\\r\\nB: y\" }", secret), "cannot carry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := strings.Join(sdktest.Validate(t, webhook.Component(), tt.src), "\n")
			if !strings.Contains(diags, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", diags, tt.want)
			}
			if strings.Contains(diags, "TOKEN") {
				t.Fatalf("diagnostics %q reveal the URL", diags)
			}
		})
	}
	c := webhook.Component()
	for _, name := range []string{"url", "secret", "headers"} {
		if f, _ := c.Spec.FieldByName(name); !f.Sensitive {
			t.Errorf("%s is not marked sensitive", name)
		}
	}
	if c.Queue != sdk.QueueDurable || len(c.Accepts) != 1 || c.Accepts[0] != sdk.KindAlert {
		t.Fatalf("accepts %v queue %q", c.Accepts, c.Queue)
	}
}

// FuzzVerify: whatever a client sends, Verify never panics and accepts only what Sign made.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1795947342, 0)
	body, _ := webhook.Body([]*sdk.Event{ptr(alert("r", "k"))}, "sink.webhook.x", now)
	f.Add(body, webhook.Sign([]byte(secret), body), "1795947342")
	f.Add([]byte("{}"), "sha256=00", "")
	f.Fuzz(func(t *testing.T, body []byte, sig, ts string) {
		p, err := webhook.Verify([]byte(secret), body, sig, ts, now, 5*time.Minute)
		if err == nil && (sig != webhook.Sign([]byte(secret), body) || p == nil) {
			t.Fatalf("accepted an unsigned request")
		}
	})
}

// TestRefusalSaysWhatAndWhatToDo: a permanent refusal's error, which the agent shows in its
// state and dead letters, names what happened, the answer and the setting to fix.
func TestRefusalSaysWhatAndWhatToDo(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{404, "endpoint gone (404 Not Found): fix url"},
		{410, "endpoint gone (410 Gone): fix url"},
		{403, "endpoint refused the credentials (403 Forbidden): fix secret or headers"},
		{400, "endpoint rejected the payload (400 Bad Request): make the receiver accept"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			r := newReceiver(t, tt.status, nil)
			s := sdktest.NewSink(t, webhook.Component(), config(r.url()), sdktest.WithMode(sdktest.GRPC))
			err := s.Write(alert("bulk_deletion", ""))
			if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write = %v, want a permanent error saying %q", err, tt.want)
			}
		})
	}
}

// TestRetriesCarryTheSameDeliveryID: every attempt to deliver the same records carries the
// same X-Tda-Delivery, whatever delivery id or batch the agent used for it, so a receiver
// drops the repeats.
func TestRetriesCarryTheSameDeliveryID(t *testing.T) {
	r := newReceiver(t, 503, nil)
	s := sdktest.NewSink(t, webhook.Component(), config(r.url()), sdktest.WithMode(sdktest.GRPC))
	records := []sdk.Event{alert("bulk_deletion", "a"), alert("mass_password_reset", "b")}
	for id := uint64(1); id <= 3; id++ {
		if err := s.WriteBatch(sdk.Batch{ID: 7, Events: records}); err == nil {
			t.Fatal("a 503 was taken for delivery")
		}
	}
	// After a restart the agent numbers the entry anew.
	_ = s.WriteBatch(sdk.Batch{ID: 99, Events: records})
	got := r.requests()
	if len(got) != 4 {
		t.Fatalf("%d requests", len(got))
	}
	first := got[0].Header.Get("X-Tda-Delivery")
	for i, req := range got {
		var p webhook.Payload
		if err := json.Unmarshal(req.Body, &p); err != nil {
			t.Fatal(err)
		}
		if h := req.Header.Get("X-Tda-Delivery"); h != first || p.ID != first {
			t.Fatalf("attempt %d carries %q (body %q), the first %q", i+1, h, p.ID, first)
		}
	}
	// Other records, another id.
	_ = s.Write(alert("bulk_deletion", "c"))
	if got := r.requests(); got[len(got)-1].Header.Get("X-Tda-Delivery") == first {
		t.Fatal("different records share a delivery id")
	}
}
