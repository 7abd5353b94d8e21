package rules

import "sort"

// The per-host hits in the snapshot: a section after the closed fingerprints, so a detector
// restarted from its checkpoint still splits an incident's count over every host it counted,
// not only over the events since the restart. A reader that predates the section stops
// before it (same snapshot version); a snapshot without it restores without hosts.
//
//	hosts:   uvarint n, n × str            (each host name once)
//	rules:   uvarint n, n × (str name, uvarint keys,
//	           keys × (str state key, uvarint hits, hits × (varint Δtime, uvarint host index)))
//
// Hits are kept in arrival order (the replicas' lines interleave on their way: times may go
// back), so times are deltas that may be negative. Restore keeps the invariant of hosts.go:
// only hits of keys the snapshot restored, naming listed hosts, at most maxHits per key; a
// key whose hits break it is left without hosts (its count is unaffected, only the split).

// appendHosts writes the section.
func (e *Engine) appendHosts(w *writer) {
	index := map[string]int{}
	var names []string
	for _, r := range e.rules {
		for _, hits := range r.hosts {
			for _, h := range hits {
				if _, ok := index[h.host]; !ok {
					index[h.host] = len(names)
					names = append(names, h.host)
				}
			}
		}
	}
	w.uvarint(uint64(len(names)))
	for _, n := range names {
		w.str(n)
	}
	var rules []*ruleState
	for _, r := range e.rules {
		if len(r.hosts) > 0 {
			rules = append(rules, r)
		}
	}
	w.uvarint(uint64(len(rules)))
	for _, r := range rules {
		w.str(r.Name)
		keys := make([]string, 0, len(r.hosts))
		for sk := range r.hosts {
			keys = append(keys, sk)
		}
		sort.Strings(keys)
		w.uvarint(uint64(len(keys)))
		for _, sk := range keys {
			hits := r.hosts[sk]
			w.str(sk)
			w.uvarint(uint64(len(hits)))
			var prev int64
			for _, h := range hits {
				w.varint(h.t - prev)
				prev = h.t
				w.uvarint(uint64(index[h.host]))
			}
		}
	}
}

// restoreHosts reads the section into the engine's rules (by name; hits of a rule or key not
// restored are skipped). A malformed section sets r.err, as any other.
func (e *Engine) restoreHosts(r *reader) {
	nnames := r.count("hosts", 1)
	names := make([]string, 0, nnames)
	for i := 0; i < nnames && r.err == nil; i++ {
		names = append(names, r.str("host"))
	}
	byName := map[string]*ruleState{}
	for _, rs := range e.rules {
		byName[rs.Name] = rs
	}
	restored := map[*ruleState]map[string][]hostHit{}
	nrules := r.count("host rules", 2)
	for i := 0; i < nrules && r.err == nil; i++ {
		rs := byName[r.str("host rule")]
		nkeys := r.count("host keys", 2)
		for j := 0; j < nkeys && r.err == nil; j++ {
			sk := r.str("host key")
			nh := r.count("host hits", 2)
			hits := make([]hostHit, 0, min(nh, maxHits))
			var t int64
			sane := nh <= maxHits
			for k := 0; k < nh && r.err == nil; k++ {
				t += r.varint("host hit time")
				idx := r.uvarint("host index")
				if idx >= uint64(len(names)) {
					sane = false
					continue
				}
				if sane {
					hits = append(hits, hostHit{t: t, host: names[idx]})
				}
			}
			if rs == nil || !sane || len(hits) == 0 || rs.keys[sk] == nil {
				continue
			}
			if restored[rs] == nil {
				restored[rs] = map[string][]hostHit{}
			}
			restored[rs][sk] = hits
		}
	}
	if r.err != nil {
		return
	}
	for rs, hosts := range restored {
		rs.hosts = hosts
	}
}
