package httppost

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false},
		{"Sun, 29 Nov 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Sun, 29 Nov 2026 09:00:00 GMT", 0, true},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"3", "Sun, 29 Nov 2026 10:00:30 GMT", "", "1e9", "-0"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func TestOutcome(t *testing.T) {
	now := time.Now()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		status int
		header http.Header
		want   string
	}{
		{200, nil, "ok"}, {204, nil, "ok"},
		{429, h("Retry-After", "7"), "retry"}, {503, h("Retry-After", "7"), "retry"},
		{429, nil, "transient"}, {408, nil, "transient"}, {500, nil, "transient"}, {502, nil, "transient"},
		{400, nil, "permanent"}, {401, nil, "permanent"}, {404, nil, "permanent"}, {410, nil, "permanent"},
		{301, nil, "permanent"},
	}
	for _, tt := range tests {
		err := Outcome(&Response{Status: tt.status, Header: tt.header}, "why", now)
		after, hasAfter := sdk.RetryAfter(err)
		var got string
		switch {
		case err == nil:
			got = "ok"
		case sdk.IsPermanent(err):
			got = "permanent"
		case hasAfter:
			got = "retry"
			if after != 7*time.Second {
				t.Errorf("%d: retry after %v, want 7s", tt.status, after)
			}
		default:
			got = "transient"
		}
		if got != tt.want {
			t.Errorf("status %d: %s (%v), want %s", tt.status, got, err, tt.want)
		}
	}
}

func TestCheckURLAndRedact(t *testing.T) {
	for _, ok := range []string{"https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x"} {
		if err := CheckURL(ok); err != nil {
			t.Errorf("CheckURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "hooks.slack.com/x", "ftp://x/y", "http://example.com/x", "https://u:p@example.com/x", "https://exa mple.com/%zz"} {
		err := CheckURL(bad)
		if err == nil {
			t.Errorf("CheckURL(%q) accepted it", bad)
		} else if len(bad) > 12 && strings.Contains(err.Error(), bad) {
			t.Errorf("CheckURL(%q) repeats the URL: %v", bad, err)
		}
	}
	if got := Redact("https://hooks.slack.com/services/T/B/SECRET?x=1"); got != "https://hooks.slack.com" {
		t.Errorf("Redact = %q", got)
	}
}
