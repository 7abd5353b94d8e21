package rules

// maxClosed bounds the fingerprints of closed incidents the engine remembers.
const maxClosed = 4096

// closedSet remembers the fingerprints of the newest resolved incidents, oldest first, so that
// reading the same lines again (a lost checkpoint, a log file restored from a backup) re-opens
// none of them: an incident with a remembered fingerprint is followed silently.
type closedSet struct {
	order []string
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
	if len(c.order) >= maxClosed {
		delete(c.set, c.order[0])
		c.order = append(c.order[:0], c.order[1:]...)
	}
	c.order = append(c.order, fp)
	c.set[fp] = struct{}{}
}
