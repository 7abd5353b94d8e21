package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5555":             "127.0.0.1",
		"203.0.113.7:1":              "203.0.113.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::/64",
		"[::ffff:203.0.113.7]:80":    "203.0.113.7",
		"@":                          "@",
	} {
		if got := ClientKey(addr); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestWrongTokensAreLimitedPerClient: after its wrong tokens are used up, a client is refused
// with 429 and Retry-After before any token is compared, even a right one, on sign-in and on
// bearer requests alike; another client is not affected; time gives attempts back.
func TestWrongTokensAreLimitedPerClient(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(Options{Tokens: testTokens, FailedLogins: 3, FailedLoginRefill: 10 * time.Second, Now: clock})
	h := s.Handler()
	send := func(remote, path, token string) *httptest.ResponseRecorder {
		var req *http.Request
		if path == "/api/login" {
			req = httptest.NewRequest("POST", path, strings.NewReader(`{"token":"`+token+`"}`))
		} else {
			req = httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	const mallory, alice = "198.51.100.9:4000", "203.0.113.7:5000"
	for i, path := range []string{"/api/login", "/api/state", "/api/login"} {
		if w := send(mallory, path, fmt.Sprintf("guess-%d-0123456789", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i, w.Code)
		}
	}
	for _, path := range []string{"/api/login", "/api/session"} {
		w := send(mallory, path, aliceToken)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" ||
			!strings.Contains(w.Body.String(), "too many wrong tokens") {
			t.Fatalf("%s after the limit: %d %q %s", path, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	if w := send(alice, "/api/login", aliceToken); w.Code != http.StatusOK {
		t.Fatalf("another client: %d %s", w.Code, w.Body)
	}
	for range 20 {
		if w := send(alice, "/api/session", aliceToken); w.Code != http.StatusOK {
			t.Fatalf("right tokens cost nothing: %d", w.Code)
		}
	}
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	if w := send(mallory, "/api/session", aliceToken); w.Code != http.StatusOK {
		t.Fatalf("after the refill: %d %s", w.Code, w.Body)
	}
}

// TestFailLimiterIsBounded: a flood of wrong tokens from 50,000 addresses leaves at most the
// bound of clients remembered.
func TestFailLimiterIsBounded(t *testing.T) {
	l := newFailLimiter(3, time.Second, 1000, time.Now)
	for i := range 50000 {
		l.failed(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := l.clients(); n != 1000 {
		t.Fatalf("%d clients remembered", n)
	}
}

// TestConcurrentWrongTokensStayWithinTheLimit: wrong tokens sent all at once from one client
// get at most the limit's worth of 401 answers (each a guess checked); every other one is
// refused with 429, and so is the right token afterwards. Counting a wrong token and deciding
// whether the client may still try are one step, so no request slips between them.
func TestConcurrentWrongTokensStayWithinTheLimit(t *testing.T) {
	const limit, clients = 3, 64
	for _, path := range []string{"/api/state", "/api/login"} {
		t.Run(path, func(t *testing.T) {
			s := New(Options{Tokens: testTokens, FailedLogins: limit, FailedLoginRefill: time.Hour})
			h := s.Handler()
			send := func(token string) int {
				var req *http.Request
				if path == "/api/login" {
					req = httptest.NewRequest("POST", path, strings.NewReader(`{"token":"`+token+`"}`))
				} else {
					req = httptest.NewRequest("GET", path, nil)
					req.Header.Set("Authorization", "Bearer "+token)
				}
				req.RemoteAddr = "198.51.100.9:4000"
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w.Code
			}
			start := make(chan struct{})
			codes := make(chan int, clients)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes <- send(fmt.Sprintf("guess-%03d-0123456789", i))
				}()
			}
			close(start)
			wg.Wait()
			close(codes)
			count := map[int]int{}
			for c := range codes {
				count[c]++
			}
			if count[http.StatusUnauthorized] > limit || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != clients {
				t.Fatalf("answers %v to %d concurrent wrong tokens, want at most %d times 401 and 429 for the rest", count, clients, limit)
			}
			if c := send(aliceToken); c != http.StatusTooManyRequests {
				t.Fatalf("the right token after the limit: %d, want 429", c)
			}
		})
	}
}
