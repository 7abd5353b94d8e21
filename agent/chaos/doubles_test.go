package chaos

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// slackDouble is an incoming-webhook endpoint answering as Slack does: 200 "ok", or a
// scripted refusal or outage. Its outage runs on a fast clock: speed simulated seconds pass
// per real second.
type slackDouble struct {
	srv *httptest.Server

	mu        sync.Mutex
	refuse    int    // answer this status with body reason to every message (0: accept)
	reason    string // Slack's error code for refuse
	outageEnd time.Time
	received  []slackMessage
	attempts  int
}

type slackMessage struct {
	At           time.Time
	Fingerprints []string
}

func newSlackDouble(t *testing.T) *slackDouble {
	d := &slackDouble{}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *slackDouble) URL() string { return d.srv.URL + "/services/T000/B000/SECRET" }

// revoke makes every message answer like a deleted webhook.
func (d *slackDouble) revoke(status int, reason string) {
	d.mu.Lock()
	d.refuse, d.reason = status, reason
	d.mu.Unlock()
}

// outage makes Slack answer 503 for simulated (real time simulated/speed).
func (d *slackDouble) outage(simulated time.Duration, speed int) time.Duration {
	real := simulated / time.Duration(speed)
	d.mu.Lock()
	d.outageEnd = time.Now().Add(real)
	d.mu.Unlock()
	return real
}

// fingerprintRE finds the alerts in a message: each shows "Fingerprint `fp`".
var fingerprintRE = regexp.MustCompile("Fingerprint `([^`]+)`")

func (d *slackDouble) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts++
	if d.refuse != 0 {
		w.WriteHeader(d.refuse)
		_, _ = io.WriteString(w, d.reason)
		return
	}
	if time.Now().Before(d.outageEnd) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "service_unavailable")
		return
	}
	var fps []string
	for _, m := range fingerprintRE.FindAllSubmatch(body, -1) {
		fps = append(fps, string(m[1]))
	}
	d.received = append(d.received, slackMessage{At: time.Now(), Fingerprints: fps})
	_, _ = io.WriteString(w, "ok")
}

// seen returns, per fingerprint, how many times Slack took it and when first.
func (d *slackDouble) seen() (count map[string]int, first map[string]time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	count, first = map[string]int{}, map[string]time.Time{}
	for _, m := range d.received {
		for _, fp := range m.Fingerprints {
			if count[fp] == 0 {
				first[fp] = m.At
			}
			count[fp]++
		}
	}
	return count, first
}

func (d *slackDouble) stats() (messages, attempts int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.received), d.attempts
}

// webhookDouble records what the webhook sink posts: every alert record with the
// X-Tda-Delivery of the request that carried it.
type webhookDouble struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	ids      map[string]int      // X-Tda-Delivery -> requests that carried it
	records  map[string][]string // alert delivery key -> X-Tda-Delivery of each request carrying it
}

func newWebhookDouble(t *testing.T) *webhookDouble {
	d := &webhookDouble{records: map[string][]string{}, ids: map[string]int{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *webhookDouble) URL() string { return d.srv.URL + "/hook" }

func (d *webhookDouble) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p struct {
		ID     string `json:"id"`
		Alerts []struct {
			Fingerprint string `json:"fingerprint"`
			State       string `json:"state"`
			Realert     int    `json:"realert"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "not a tda payload", http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.requests++
	d.ids[r.Header.Get("X-Tda-Delivery")]++
	for _, a := range p.Alerts {
		key := a.Fingerprint + "/" + a.State
		d.records[key] = append(d.records[key], r.Header.Get("X-Tda-Delivery"))
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// tally returns how many distinct records arrived, how many arrived more than once (extra
// copies), how many of those copies carried another delivery id than the first, and how many
// requests repeated an earlier request's delivery id.
func (d *webhookDouble) tally() (distinct, repeats, otherID, repeatedRequests int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.ids {
		repeatedRequests += n - 1
	}
	for _, ids := range d.records {
		distinct++
		repeats += len(ids) - 1
		for _, id := range ids[1:] {
			if id != ids[0] {
				otherID++
			}
		}
	}
	return distinct, repeats, otherID, repeatedRequests
}

// mailServer is a real SMTP server (github.com/emersion/go-smtp) on 127.0.0.1, without TLS or
// authentication, that keeps every message.
type mailServer struct {
	Addr string
	srv  *smtp.Server

	mu       sync.Mutex
	messages []string
}

func newMailServer(t *testing.T) *mailServer {
	m := &mailServer{}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{m: m}, nil }))
	m.srv.Domain = "mx.test"
	m.srv.ReadTimeout, m.srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = m.srv.Close()
		<-done
	})
	return m
}

// received returns the messages' raw text.
func (m *mailServer) received() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.messages...)
}

// holds reports whether a received message mentions s.
func (m *mailServer) holds(s string) bool {
	for _, msg := range m.received() {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

type mailSession struct{ m *mailServer }

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	s.m.messages = append(s.m.messages, string(b))
	s.m.mu.Unlock()
	return nil
}
func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }
