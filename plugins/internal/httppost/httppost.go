// Package httppost sends one notification as an HTTP POST and turns the answer into what a tda
// sink reports: nil, a transient error (retried with backoff), sdk.Retry with the server's
// Retry-After, or sdk.Permanent. Webhook URLs often carry their credential in the path, so no
// error from this package contains more of a URL than its scheme and host.
package httppost

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// MaxResponseBody bounds how much of a response is read.
const MaxResponseBody = 64 << 10

// NewClient returns an HTTP client for notifications: it honours HTTPS_PROXY/NO_PROXY, requires
// TLS 1.2 or later and does not follow redirects (a webhook that redirects is misconfigured,
// and following a POST redirect would resend the alert elsewhere).
func NewClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Response is what the server answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to target with the given headers, waiting at most timeout. The error, when
// the request did not get an answer, is transient and names only the target's scheme and host.
func Post(ctx context.Context, client *http.Client, target string, body []byte, header http.Header, timeout time.Duration) (*Response, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, sdk.Permanent(fmt.Errorf("build request to %s: %w", Redact(target), unwrapURLError(err)))
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", Redact(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the response: %w", Redact(target), unwrapURLError(err))
	}
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, MaxResponseBody)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", stripURL(ue.Err))
		}
		return stripURL(ue.Err)
	}
	return err
}

// stripURL guards against inner errors that quote the URL themselves.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Err.Error())
	}
	return err
}

// Redact returns the scheme and host of target ("https://hooks.slack.com"), never its path or
// query, which may hold a token.
func Redact(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "the configured URL"
	}
	return u.Scheme + "://" + u.Host
}

// CheckURL reports what is wrong with a configured endpoint without repeating it (it may be a
// secret): it must be absolute https, or http to a loopback address.
func CheckURL(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return errors.New("the URL does not parse; check for stray spaces or quotes")
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("the URL must start with https://")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("the URL must use https:// (plain http is accepted only for loopback addresses, not %s)", u.Hostname())
	}
	if u.User != nil {
		return errors.New("the URL must not carry a user or password; use headers for credentials")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Outcome classifies an answer for the agent: nil for 2xx; sdk.Retry with the server's delay
// for 429 or 503 with a usable Retry-After; a transient error for 408, 429, 425 and 5xx; and
// sdk.Permanent for everything else (3xx and the other 4xx: the request itself is refused).
// reason is the server's explanation (e.g. Slack's "no_service"), included in the error.
func Outcome(resp *Response, reason string, now time.Time) error {
	code := resp.Status
	if code >= 200 && code < 300 {
		return nil
	}
	what := fmt.Sprintf("HTTP %d", code)
	if reason != "" {
		what += " " + reason
	}
	err := errors.New(what)
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if after, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return sdk.Retry(err, after)
		}
		return err
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code >= 500:
		return err
	case code >= 300 && code < 400:
		return sdk.Permanent(fmt.Errorf("%w: the endpoint redirects; configure the final URL", err))
	}
	return sdk.Permanent(err)
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date. A date in the past
// gives 0. It returns false when v is empty or malformed.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(30*24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// Reason returns a short, printable version of a response body for logs and errors.
func Reason(body []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
