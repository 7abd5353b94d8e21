package api

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Bounds of the browser sessions a server keeps.
const (
	// MaxSessionsPerToken is how many sessions one token holds at once: signing in once more
	// ends that token's oldest session.
	MaxSessionsPerToken = 64
	// MaxSessions is how many sessions the server holds in all: signing in once more ends the
	// oldest session of any token.
	MaxSessions = 4096
)

type session struct {
	id      string
	csrf    string
	token   Token
	expires time.Time
	// all and own are the session's places in the server-wide and the token's age order.
	all, own *list.Element
}

// sessions are the browser sessions of one server, kept in memory: a restart logs everyone
// out, which is the safe direction.
//
// Invariants, kept under mu: every session is in byID, in all and in exactly one list of
// byToken, or in none of them; all and each list of byToken are in creation order, oldest in
// front, which with one TTL for every session is also expiry order; len(byID) <= max and every
// list of byToken holds at most perToken. So a lookup is one map access, and expiry and eviction
// only ever look at the front of a list.
type sessions struct {
	mu       sync.Mutex
	ttl      time.Duration
	now      func() time.Time
	perToken int
	max      int
	byID     map[string]*session
	all      *list.List            // of *session
	byToken  map[string]*list.List // token name -> its sessions
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return newSessionsBounded(ttl, now, MaxSessionsPerToken, MaxSessions)
}

func newSessionsBounded(ttl time.Duration, now func() time.Time, perToken, total int) *sessions {
	return &sessions{ttl: ttl, now: now, perToken: max(perToken, 1), max: max(total, 1),
		byID: map[string]*session{}, all: list.New(), byToken: map[string]*list.List{}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// create starts a session for t, first ending expired sessions, then t's oldest session if t
// holds perToken of them, then the oldest of all if the server holds max.
func (ss *sessions) create(t Token) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for e := ss.all.Front(); e != nil && now.After(e.Value.(*session).expires); e = ss.all.Front() {
		ss.remove(e.Value.(*session))
	}
	own := ss.byToken[t.Name]
	if own != nil && own.Len() >= ss.perToken {
		ss.remove(own.Front().Value.(*session))
	}
	if ss.all.Len() >= ss.max {
		ss.remove(ss.all.Front().Value.(*session))
	}
	if own = ss.byToken[t.Name]; own == nil {
		own = list.New()
		ss.byToken[t.Name] = own
	}
	s := &session{id: randomHex(32), csrf: randomHex(32), token: t, expires: now.Add(ss.ttl)}
	s.all = ss.all.PushBack(s)
	s.own = own.PushBack(s)
	ss.byID[s.id] = s
	return s
}

// remove takes s out of every index; the caller holds mu.
func (ss *sessions) remove(s *session) {
	delete(ss.byID, s.id)
	ss.all.Remove(s.all)
	if own := ss.byToken[s.token.Name]; own != nil {
		own.Remove(s.own)
		if own.Len() == 0 {
			delete(ss.byToken, s.token.Name)
		}
	}
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return nil
	}
	if ss.now().After(s.expires) {
		ss.remove(s)
		return nil
	}
	return s
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byID[id]; ok {
		ss.remove(s)
	}
}

// counts returns how many sessions the server holds and how many tokens hold one.
func (ss *sessions) counts() (held, tokens int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID), len(ss.byToken)
}
