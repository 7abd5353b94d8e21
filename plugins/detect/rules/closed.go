package rules

// maxClosed bounds the fingerprints of closed incidents the engine remembers.
const maxClosed = 4096

// closedSet remembers the fingerprints of the newest resolved incidents, so that reading the
// same lines again (a lost checkpoint, a log file restored from a backup) re-opens none of
// them: an incident with a remembered fingerprint is followed silently. order is a ring of at
// most maxClosed fingerprints; next is where the oldest is, once it is full.
type closedSet struct {
	order []string
	next  int
	set   map[string]struct{}
}

func newClosedSet() closedSet { return closedSet{set: map[string]struct{}{}} }

func (c *closedSet) has(fp string) bool {
	_, ok := c.set[fp]
	return ok
}

func (c *closedSet) add(fp string) {
	if c.has(fp) {
		return
	}
	c.set[fp] = struct{}{}
	if len(c.order) < maxClosed {
		c.order = append(c.order, fp)
		return
	}
	delete(c.set, c.order[c.next])
	c.order[c.next] = fp
	c.next = (c.next + 1) % maxClosed
}

// oldestFirst returns the fingerprints from the oldest to the newest.
func (c *closedSet) oldestFirst() []string {
	return append(append([]string(nil), c.order[c.next:]...), c.order[:c.next]...)
}
