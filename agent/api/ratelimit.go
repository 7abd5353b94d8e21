package api

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the failed sign-in limit per client.
const (
	// DefaultFailedLogins is how many wrong tokens a client may send in a row.
	DefaultFailedLogins = 10
	// DefaultFailedLoginRefill is how often a client gets one more attempt back.
	DefaultFailedLoginRefill = 6 * time.Second
	// maxLimitedClients bounds the clients the limiter remembers.
	maxLimitedClients = 10000
)

// failLimiter counts wrong tokens per client: a client that has used up its attempts is
// refused (429) before its token is even compared, until the bucket refills. Right tokens cost
// nothing, so an operator who signs in often is never held back.
//
// Invariant: a client gets at most burst answers of "wrong token" (401) per refill. A wrong
// token takes its attempt and learns whether one was left in one step under mu (failed), so
// concurrent requests that all passed the early check (blocked) cannot each be answered as
// if it were the only one: those past the limit are refused with 429 like any later request.
//
// Clients are keyed by address, an IPv6 address by its /64 (one host holds a whole /64). At
// most max clients are remembered, the least recently seen forgotten first: forgetting one
// only gives it a fresh bucket, and an attacker gains nothing by it that another address
// would not give.
type failLimiter struct {
	mu     sync.Mutex
	every  time.Duration
	burst  int
	max    int
	now    func() time.Time
	byKey  map[string]*list.Element // of *clientBucket
	recent *list.List               // least recently seen in front
}

type clientBucket struct {
	key string
	lim *rate.Limiter
}

func newFailLimiter(burst int, every time.Duration, max int, now func() time.Time) *failLimiter {
	return &failLimiter{every: every, burst: burst, max: max, now: now,
		byKey: map[string]*list.Element{}, recent: list.New()}
}

// ClientKey is the part of a remote address that identifies a client: the IP address, or for
// IPv6 its /64, which one host commonly holds whole.
func ClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// blocked reports whether key has no attempt left, and when it has one again.
func (l *failLimiter) blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byKey[key]
	if !ok {
		return false, 0
	}
	if wait := l.waitLocked(e.Value.(*clientBucket).lim, l.now()); wait > 0 {
		return true, wait
	}
	return false, 0
}

// failed takes one attempt from key. It reports whether one was left; when none was, the
// request must be refused as limited (429), and wait is when key has an attempt again.
func (l *failLimiter) failed(key string) (counted bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byKey[key]
	if ok {
		l.recent.MoveToBack(e)
	} else {
		if l.recent.Len() >= l.max {
			old := l.recent.Front()
			delete(l.byKey, old.Value.(*clientBucket).key)
			l.recent.Remove(old)
		}
		e = l.recent.PushBack(&clientBucket{key: key, lim: rate.NewLimiter(rate.Every(l.every), l.burst)})
		l.byKey[key] = e
	}
	lim := e.Value.(*clientBucket).lim
	now := l.now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	return false, l.waitLocked(lim, now)
}

// waitLocked is how long until lim has an attempt again. l.mu is held.
func (l *failLimiter) waitLocked(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(l.every)))
}

func (l *failLimiter) clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}

// refuseIfLimited answers 429 and returns true when the request's client has no attempt left.
func (s *Server) refuseIfLimited(w http.ResponseWriter, r *http.Request) bool {
	limited, wait := s.fails.blocked(ClientKey(r.RemoteAddr))
	if !limited {
		return false
	}
	s.refuseLimited(w, r, wait)
	return true
}

// countWrongToken takes an attempt from the request's client for a wrong token. It returns
// false after answering 429 when the client had none left: the caller then answers nothing.
func (s *Server) countWrongToken(w http.ResponseWriter, r *http.Request) bool {
	counted, wait := s.fails.failed(ClientKey(r.RemoteAddr))
	if !counted {
		s.refuseLimited(w, r, wait)
	}
	return counted
}

// refuseLimited answers 429 with the wait in Retry-After.
func (s *Server) refuseLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusTooManyRequests, "rate_limited",
		"too many wrong tokens from "+ClientKey(r.RemoteAddr)+": wait "+strconv.Itoa(secs)+" s, then try again with the right token")
}
