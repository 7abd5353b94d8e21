package provider

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// MaxIdentifierLength is RDS's limit for cluster and snapshot identifiers.
const MaxIdentifierLength = 63

// idTimeLayout is the timestamp inside snapshot identifiers: sortable, lowercase, UTC.
const idTimeLayout = "20060102t150405z"

// NewID builds a snapshot identifier that follows RDS naming rules:
// tda-<target>-<trigger>-<yyyymmddthhmmssz>[-<suffix>]. The same inputs always give the same
// identifier, which makes a retried create idempotent (the second attempt finds the first).
// The target part is shortened when the whole would exceed 63 characters.
func NewID(target, trigger string, t time.Time, suffix string) string {
	tail := "-" + sanitize(trigger) + "-" + t.UTC().Format(idTimeLayout)
	if s := sanitize(suffix); s != "" {
		tail += "-" + s
	}
	tgt := sanitize(target)
	if tgt == "" {
		tgt = "db"
	}
	if room := MaxIdentifierLength - len("tda-") - len(tail); len(tgt) > room {
		tgt = strings.TrimRight(tgt[:max(room, 1)], "-")
	}
	return "tda-" + tgt + tail
}

// sanitize lowercases s and maps every run of characters other than letters and digits to
// one hyphen, without leading or trailing hyphens.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// ValidIdentifier checks RDS's rules for cluster, instance and snapshot identifiers: 1 to 63
// letters, digits or hyphens; starting with a letter; no trailing hyphen and no two hyphens in
// a row.
func ValidIdentifier(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("identifier is empty")
	case len(id) > MaxIdentifierLength:
		return fmt.Errorf("identifier %q is %d characters long; the limit is %d", id, len(id), MaxIdentifierLength)
	case !isLetter(id[0]):
		return fmt.Errorf("identifier %q must start with a letter", id)
	case strings.HasSuffix(id, "-"):
		return fmt.Errorf("identifier %q must not end with a hyphen", id)
	case strings.Contains(id, "--"):
		return fmt.Errorf("identifier %q must not contain two hyphens in a row", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' {
			return fmt.Errorf("identifier %q may hold only letters, digits and hyphens, not %q", id, c)
		}
	}
	return nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// MaxSnapshotIDLength bounds a snapshot id given from outside: the longest RDS cluster
// snapshot ARN fits.
const MaxSnapshotIDLength = snapshotapi.MaxSnapshotIDLength

// ValidSnapshotID checks a snapshot id that came from outside (the API, the CLI, the panel, a
// file name in a dump directory) before any provider reads, restores or deletes by it. Every id
// NewID makes passes, and so do RDS's automated ids ("rds:prod-2026-11-29-03-05") and the ARNs
// of shared snapshots. Nothing that could name another file passes: the id holds only ASCII
// letters, digits, hyphens and colons, starts with a letter, and is at most 255 bytes, so no
// '/', '\', '.', NUL, space or control character ever reaches a path or a request.
func ValidSnapshotID(id string) error {
	if why := snapshotapi.SnapshotIDProblem(id); why != "" {
		return &Error{Op: fmt.Sprintf("snapshot id %q", id), Class: ErrInvalid, Err: errors.New(why),
			Advice: "copy the id from `tda snapshot list`"}
	}
	return nil
}
