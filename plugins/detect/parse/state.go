package parse

import (
	"sort"
	"time"
)

// OriginState is what a Parser remembers about one origin.
type OriginState struct {
	Origin string    `json:"origin"`
	Prev   time.Time `json:"prev"`
	Audit  uint8     `json:"audit,omitempty"`
}

// State returns the parser's per-origin state, sorted by origin, for a processor snapshot.
func (p *Parser) State() []OriginState {
	out := make([]OriginState, 0, len(p.origins))
	for n, s := range p.origins {
		out = append(out, OriginState{Origin: n, Prev: s.prev, Audit: s.audit})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// SetState replaces the per-origin state with a snapshot's.
func (p *Parser) SetState(states []OriginState) {
	p.origins = make(map[string]*originState, len(states))
	p.lastState = nil
	p.pending = 0 // held CRI parts are not part of a snapshot
	for _, s := range states {
		p.origins[s.Origin] = &originState{prev: s.Prev.UTC(), audit: s.Audit}
	}
}
