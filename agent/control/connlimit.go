package control

import (
	"container/list"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/tda-dev/tda/agent/api"
)

// connLimit caps the connections one server holds, in all and per client, so that no number
// of slow or idle connections can use up the agent's file descriptors (and with them the
// control socket, the state store and the plugins' pipes).
//
// A connection is waiting (accepted, reading a request's header, or idle between requests) or
// serving (a handler runs for it). When a new connection would pass a cap, the oldest
// waiting connection under that cap is closed to make room: a slowloris connection that
// trickles its header is always the oldest, while a real client's request is read and served
// at once. When every connection under the cap is serving, the new one is closed instead.
//
// Invariants, kept under mu: every open connection is in exactly one of waiting and serving,
// each list is oldest first, perClient counts them by client, and len(waiting)+len(serving) <=
// max; after Close a connection is in neither.
type connLimit struct {
	net.Listener
	max, perClientMax int
	onShed            func(client string)

	mu        sync.Mutex
	waiting   *list.List // of *limitedConn
	serving   *list.List
	perClient map[string]int
}

type limitedConn struct {
	net.Conn
	l      *connLimit
	client string
	// elem is the conn's place in waiting or serving (nil once closed); inUse counts the
	// handlers running on it. Both are guarded by l.mu.
	elem  *list.Element
	inUse int
	once  sync.Once
}

func newConnLimit(ln net.Listener, total, perClient int, onShed func(client string)) *connLimit {
	if onShed == nil {
		onShed = func(string) {}
	}
	return &connLimit{Listener: ln, max: total, perClientMax: perClient, onShed: onShed,
		waiting: list.New(), serving: list.New(), perClient: map[string]int{}}
}

// Accept takes the next connection, closing the oldest waiting one first when a cap is
// reached; it never blocks on the caps, so the kernel's backlog never fills behind them.
func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, client: api.ClientKey(c.RemoteAddr().String())}
		victim, ok := l.admit(lc)
		if victim != nil {
			victim.Close()
			l.onShed(victim.client)
		}
		if ok {
			return lc, nil
		}
		c.Close()
		l.onShed(lc.client)
	}
}

// admit registers lc, choosing a waiting connection to close when a cap is reached, or
// refusing lc when every connection under the cap is serving.
func (l *connLimit) admit(lc *limitedConn) (victim *limitedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perClient[lc.client] >= l.perClientMax:
		victim = l.oldestWaiting(lc.client)
	case l.waiting.Len()+l.serving.Len() >= l.max:
		victim = l.oldestWaiting("")
	}
	if victim == nil && (l.perClient[lc.client] >= l.perClientMax || l.waiting.Len()+l.serving.Len() >= l.max) {
		return nil, false
	}
	if victim != nil {
		l.forget(victim)
	}
	lc.elem = l.waiting.PushBack(lc)
	l.perClient[lc.client]++
	return victim, true
}

// oldestWaiting returns the oldest waiting connection (of client, unless ""). The scan stops
// at the first match; for one client it passes at most the connections held, bounded by max.
func (l *connLimit) oldestWaiting(client string) *limitedConn {
	for e := l.waiting.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*limitedConn); client == "" || c.client == client {
			return c
		}
	}
	return nil
}

// forget takes c out of the lists; the caller holds mu.
func (l *connLimit) forget(c *limitedConn) {
	if c.elem == nil {
		return
	}
	if c.inUse > 0 {
		l.serving.Remove(c.elem)
	} else {
		l.waiting.Remove(c.elem)
	}
	c.elem = nil
	if l.perClient[c.client]--; l.perClient[c.client] <= 0 {
		delete(l.perClient, c.client)
	}
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.forget(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// begin and end bracket a handler running on c.
func (c *limitedConn) begin() {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.elem == nil {
		return
	}
	if c.inUse == 0 {
		c.l.waiting.Remove(c.elem)
		c.elem = c.l.serving.PushBack(c)
	}
	c.inUse++
}

func (c *limitedConn) end() {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.elem == nil {
		return
	}
	if c.inUse--; c.inUse == 0 {
		c.l.serving.Remove(c.elem)
		c.elem = c.l.waiting.PushBack(c)
	}
}

// held returns how many connections are open.
func (l *connLimit) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting.Len() + l.serving.Len()
}

type connKey struct{}

// connContext remembers a request's connection for track (http.Server.ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// track marks a connection serving while h runs for it.
func track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc, ok := r.Context().Value(connKey{}).(*limitedConn); ok {
			lc.begin()
			defer lc.end()
		}
		h.ServeHTTP(w, r)
	})
}
