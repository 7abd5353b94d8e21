package slack_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fakeSlack is a local incoming-webhook endpoint that answers as Slack documents
// (api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks): the last path
// element picks the webhook's behaviour, and every payload is checked against Slack's
// Block Kit limits, answering 400 invalid_payload when one is broken, as Slack does.
type fakeSlack struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []slackRequest
	down     bool // every webhook answers 500 rollup_error
	limited  int  // this many next requests answer 429 with Retry-After: 3
}

type slackRequest struct {
	At      time.Time
	Path    string
	Body    []byte
	Payload map[string]any
	Status  int
}

// Webhook behaviours, by the last path element.
var slackAnswers = map[string]struct {
	status int
	body   string
	header map[string]string
}{
	"ok":                  {200, "ok", nil},
	"invalid_payload":     {400, "invalid_payload", nil},
	"user_not_found":      {400, "user_not_found", nil},
	"action_prohibited":   {403, "action_prohibited", nil},
	"invalid_token":       {403, "invalid_token", nil},
	"no_service":          {404, "no_service", nil},
	"channel_not_found":   {404, "channel_not_found", nil},
	"channel_is_archived": {410, "channel_is_archived", nil},
	"rate_limited":        {429, `{"ok":false,"error":"rate_limited","retry_after":3}`, map[string]string{"Retry-After": "3"}},
	"rate_limited_body":   {429, `{"ok":false,"error":"rate_limited","retry_after":2}`, nil},
	"rollup_error":        {500, "rollup_error", nil},
	"unavailable":         {503, "service_unavailable", nil},
	"redirect":            {302, "", map[string]string{"Location": "https://example.com/elsewhere"}},
}

func newFakeSlack(t testing.TB) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL returns the webhook URL with the given behaviour.
func (f *fakeSlack) URL(behaviour string) string {
	return f.srv.URL + "/services/T000SECRET/B000SECRET/" + behaviour
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	behaviour := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	ans, known := slackAnswers[behaviour]
	if !known || r.Method != http.MethodPost {
		ans.status, ans.body = 404, "no_service"
	}
	f.mu.Lock()
	switch {
	case f.down:
		ans = slackAnswers["rollup_error"]
	case f.limited > 0:
		f.limited--
		ans = slackAnswers["rate_limited"]
	}
	f.mu.Unlock()
	var payload map[string]any
	if problem := checkSlackPayload(r.Header.Get("Content-Type"), body, &payload); problem != "" && ans.status == 200 {
		ans.status, ans.body = 400, "invalid_payload"
		w.Header().Set("X-Test-Problem", problem)
	}
	f.mu.Lock()
	f.requests = append(f.requests, slackRequest{At: at, Path: r.URL.Path, Body: body, Payload: payload, Status: ans.status})
	f.mu.Unlock()
	for k, v := range ans.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(ans.status)
	_, _ = io.WriteString(w, ans.body)
}

// SetDown makes every webhook fail with 500 (true) or answer normally again (false).
func (f *fakeSlack) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// Limit makes the next n requests answer 429 with Retry-After: 3.
func (f *fakeSlack) Limit(n int) {
	f.mu.Lock()
	f.limited = n
	f.mu.Unlock()
}

// Requests returns what the server received so far.
func (f *fakeSlack) Requests() []slackRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackRequest(nil), f.requests...)
}

// checkSlackPayload applies Slack's documented limits; it returns "" for a valid message.
func checkSlackPayload(contentType string, body []byte, out *map[string]any) string {
	if !strings.HasPrefix(contentType, "application/json") {
		return "content type " + contentType
	}
	if !utf8.Valid(body) {
		return "body is not UTF-8"
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string      `json:"type"`
			Text     *slackText  `json:"text"`
			Fields   []slackText `json:"fields"`
			Elements []slackText `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return "not JSON: " + err.Error()
	}
	_ = json.Unmarshal(body, out)
	if msg.Text == "" && len(msg.Blocks) == 0 {
		return "no text and no blocks"
	}
	if n := utf8.RuneCountInString(msg.Text); n > 40000 {
		return fmt.Sprintf("text has %d characters", n)
	}
	if len(msg.Blocks) > 50 {
		return fmt.Sprintf("%d blocks", len(msg.Blocks))
	}
	for i, b := range msg.Blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" {
				return fmt.Sprintf("block %d: header needs plain_text", i)
			}
			if p := b.Text.check(150); p != "" {
				return fmt.Sprintf("block %d header: %s", i, p)
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				return fmt.Sprintf("block %d: section without text or fields", i)
			}
			if b.Text != nil {
				if p := b.Text.check(3000); p != "" {
					return fmt.Sprintf("block %d section: %s", i, p)
				}
			}
			if len(b.Fields) > 10 {
				return fmt.Sprintf("block %d: %d fields", i, len(b.Fields))
			}
			for _, f := range b.Fields {
				if p := f.check(2000); p != "" {
					return fmt.Sprintf("block %d field: %s", i, p)
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return fmt.Sprintf("block %d: context with %d elements", i, len(b.Elements))
			}
			for _, e := range b.Elements {
				if p := e.check(3000); p != "" {
					return fmt.Sprintf("block %d context: %s", i, p)
				}
			}
		case "divider":
		default:
			return fmt.Sprintf("block %d: unknown type %q", i, b.Type)
		}
	}
	return ""
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (t slackText) check(max int) string {
	if t.Type != "plain_text" && t.Type != "mrkdwn" {
		return "text type " + t.Type
	}
	n := utf8.RuneCountInString(t.Text)
	if n < 1 || n > max {
		return fmt.Sprintf("text of %d characters (1..%d)", n, max)
	}
	return ""
}
