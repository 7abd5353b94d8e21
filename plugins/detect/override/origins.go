package override

import (
	"fmt"
	"path"
	"strings"
)

// Origins decides which origins (file paths, container names) may declare an override with a
// log line. The zero value allows none: an app's log line is outside input, and whoever can
// get a line into a log could otherwise silence the overridable rules. Operators' overrides
// (tda override on) do not depend on it.
type Origins struct {
	globs []string
}

// NewOrigins checks the glob patterns of allow_origins. A pattern is matched with path.Match
// against the whole origin ("/var/log/app/*.log") and, when it has no "/", also against the
// origin's last path element ("flask-*.log", "flask_web_*"). "*" alone allows every origin.
func NewOrigins(globs []string) (Origins, error) {
	var o Origins
	for _, g := range globs {
		g = strings.TrimSpace(g)
		if g == "" {
			return o, fmt.Errorf("an empty pattern allows nothing; remove it or write e.g. \"flask_web_*\"")
		}
		if _, err := path.Match(g, ""); err != nil {
			return o, fmt.Errorf("invalid pattern %q: %v (use *, ? and [a-z] as in shell globs)", g, err)
		}
		o.globs = append(o.globs, g)
	}
	return o, nil
}

// Any reports whether some origin may declare overrides.
func (o Origins) Any() bool { return len(o.globs) > 0 }

// Allows reports whether a log line from origin may declare an override.
func (o Origins) Allows(origin string) bool {
	if origin == "" {
		return false
	}
	base := path.Base(strings.ReplaceAll(origin, "\\", "/"))
	for _, g := range o.globs {
		if ok, _ := path.Match(g, origin); ok {
			return true
		}
		if !strings.Contains(g, "/") {
			if ok, _ := path.Match(g, base); ok {
				return true
			}
		}
	}
	return false
}

// String lists the patterns, for messages.
func (o Origins) String() string {
	if len(o.globs) == 0 {
		return "none"
	}
	return strings.Join(o.globs, ", ")
}
