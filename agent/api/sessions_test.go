package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestSessionsAreBoundedPerTokenAndOverall(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	alice, bob, wall := testTokens[0], testTokens[1], testTokens[2]
	tests := []struct {
		name         string
		logins       []Token
		gone         []int // indexes of logins whose session was ended
		held, tokens int
	}{
		{"under the bounds", []Token{alice, bob, alice}, nil, 3, 2},
		{"a token's fourth ends its first", []Token{alice, alice, alice, alice}, []int{0}, 3, 1},
		{"per token, others untouched", []Token{alice, bob, alice, alice, alice}, []int{0}, 4, 2},
		{"the sixth of all ends the oldest of any token", []Token{bob, alice, alice, wall, wall, alice}, []int{0}, 5, 2},
		{"both bounds", []Token{alice, alice, alice, bob, bob, alice, wall, wall}, []int{0, 1, 2}, 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newSessionsBounded(time.Hour, clock, 3, 5)
			var made []*session
			for _, tok := range tt.logins {
				made = append(made, ss.create(tok))
			}
			for i, s := range made {
				wantGone := false
				for _, g := range tt.gone {
					wantGone = wantGone || g == i
				}
				if got := ss.get(s.id); (got == nil) != wantGone {
					t.Errorf("session %d of %s: present %v, want gone %v", i, s.token.Name, got != nil, wantGone)
				}
			}
			if held, tokens := ss.counts(); held != tt.held || tokens != tt.tokens {
				t.Errorf("held %d sessions of %d tokens, want %d of %d", held, tokens, tt.held, tt.tokens)
			}
		})
	}
}

func TestSessionsExpireOldestFirstAndDrop(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	ss := newSessionsBounded(time.Hour, clock, 10, 10)
	old := ss.create(testTokens[0])
	now = now.Add(30 * time.Minute)
	young := ss.create(testTokens[0])
	now = now.Add(31 * time.Minute)
	ss.create(testTokens[1]) // expires old on the way
	if held, _ := ss.counts(); held != 2 || ss.get(old.id) != nil || ss.get(young.id) == nil {
		t.Fatalf("after the first expired: %d held", held)
	}
	ss.drop(young.id)
	ss.drop(young.id)
	ss.drop("no such session")
	if held, tokens := ss.counts(); held != 1 || tokens != 1 {
		t.Fatalf("after drop: %d sessions of %d tokens", held, tokens)
	}
}

// TestFortyThousandLoginsStayBounded: 40,000 sign-ins of one viewer token, then of 400 tokens,
// leave at most the bounds in memory, the newest sessions work and the first ones are ended.
func TestFortyThousandLoginsStayBounded(t *testing.T) {
	ss := newSessions(time.Hour, time.Now)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var first, last *session
	for i := range 40000 {
		s := ss.create(testTokens[2])
		if i == 0 {
			first = s
		}
		last = s
	}
	if held, _ := ss.counts(); held != MaxSessionsPerToken {
		t.Fatalf("one token holds %d sessions, want %d", held, MaxSessionsPerToken)
	}
	for i := range 40000 {
		last = ss.create(Token{Name: fmt.Sprintf("viewer-%d", i%400), Role: RoleViewer})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held, tokens := ss.counts()
	if held != MaxSessions || tokens > MaxSessions {
		t.Fatalf("%d sessions of %d tokens, want %d", held, tokens, MaxSessions)
	}
	if ss.get(first.id) != nil || ss.get(last.id) == nil {
		t.Fatal("the oldest session survived or the newest is missing")
	}
	// A lookup is one map access: it allocates nothing and touches no other session (the
	// figures of BenchmarkSessionGet are alike with 16 and 4,096 sessions held).
	if allocs := testing.AllocsPerRun(1000, func() { ss.get(last.id) }); allocs != 0 {
		t.Fatalf("a lookup allocates %.1f times", allocs)
	}
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("80,000 sign-ins: %d sessions held, heap in use grew %.1f MiB", held, float64(grew)/(1<<20))
	if grew > 8<<20 {
		t.Fatalf("heap in use grew %d bytes for %d sessions", grew, held)
	}
}

// TestLoginsOverHTTPEndTheOldestSession: over the API, a token's sign-ins beyond its bound end
// its oldest sessions, whose cookie then gets 401.
func TestLoginsOverHTTPEndTheOldestSession(t *testing.T) {
	srv := httptest.NewServer(New(Options{Tokens: testTokens}).Handler())
	defer srv.Close()
	login := func() *http.Cookie {
		resp, err := http.Post(srv.URL+"/api/login", "application/json", strings.NewReader(`{"token":"`+viewerToken+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		return resp.Cookies()[0]
	}
	status := func(c *http.Cookie) int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/session", nil)
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	first := login()
	var last *http.Cookie
	for range MaxSessionsPerToken {
		last = login()
	}
	if got := status(first); got != http.StatusUnauthorized {
		t.Errorf("the token's oldest session: %d, want 401", got)
	}
	if got := status(last); got != http.StatusOK {
		t.Errorf("the newest session: %d, want 200", got)
	}
}

// BenchmarkSessionGet looks up one session among few and among the most a server holds: the
// figures are the same, as a lookup is one map access.
func BenchmarkSessionGet(b *testing.B) {
	for _, n := range []int{16, MaxSessions} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ss := newSessions(time.Hour, time.Now)
			var ids []string
			for i := range n {
				ids = append(ids, ss.create(Token{Name: fmt.Sprint(i % 1000)}).id)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ss.get(ids[i%len(ids)]) == nil {
					b.Fatal("missing")
				}
			}
		})
	}
}

// BenchmarkSessionCreate signs in while few sessions are held and while the most are: a
// sign-in ends at most two sessions and looks only at the fronts of its lists.
func BenchmarkSessionCreate(b *testing.B) {
	for _, n := range []int{16, MaxSessions} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ss := newSessionsBounded(time.Hour, time.Now, n, n)
			for i := range n {
				ss.create(Token{Name: fmt.Sprint(i % 4)})
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ss.create(Token{Name: fmt.Sprint(i % 4)})
			}
		})
	}
}
