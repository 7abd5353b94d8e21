package panel

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/tda-dev/tda/agent/ops"
)

// Publish writes the JSON files the GitHub-mode page reads (state.json, alerts.json,
// snapshots.json, migrations.json) into dir. A Pages site is public, so nothing derived from
// log content goes out: no alert keys (IPs, user names, user ids), actors, excerpts, origins
// or sources, no explanation (it names the key), no override or decision reasons, no tags, and
// no alert fingerprint or incident id (hashes of the key that a search over all IPv4
// addresses could undo).
// What is published is built from the config (rules, targets), counts and times, and the names
// operators gave (migration names, the people who decided, restore names).
func Publish(ctx context.Context, o ops.Operations, dir string) error {
	st, err := o.State(ctx)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	alerts, err := o.Alerts(ctx, ops.AlertFilter{State: "open", Limit: 200})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	snaps, err := o.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("snapshots: %w", err)
	}
	migs, err := o.Migrations(ctx, ops.MigrationFilter{Limit: 50})
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	id := newOpaque()
	files := map[string]any{
		"state.json":      publicState(st, id),
		"alerts.json":     publicAlerts(alerts, id),
		"snapshots.json":  publicSnapshots(snaps, id),
		"migrations.json": publicMigrations(migs),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func publicState(st ops.SystemState, id opaque) ops.SystemState {
	out := ops.SystemState{Status: st.Status, Time: st.Time, Agent: st.Agent, PendingMigrations: st.PendingMigrations,
		Reasons: []string{}, Blocking: []ops.Incident{}, Acknowledged: []ops.Incident{}, Degraded: []string{}, Components: []ops.ComponentHealth{}}
	for _, in := range st.Blocking {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%s incident %s (%s) is not acknowledged", in.Severity, id.incident(in.Fingerprint), in.Rule))
	}
	for _, in := range st.Acknowledged {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%s incident %s (%s) is acknowledged and not closed", in.Severity, id.incident(in.Fingerprint), in.Rule))
	}
	if o := st.Override; o != nil {
		// The actor of an override a log line declared comes from the log: neither name is shown.
		by := "an operator"
		if o.Via != "" && o.Via != "operator" {
			by = "a log line"
		}
		out.Reasons = append(out.Reasons, fmt.Sprintf("override declared by %s, in force until %s", by, o.Until.Format(time.RFC3339)))
	}
	if len(st.Degraded) > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d component(s) degraded", len(st.Degraded)))
	}
	return out
}

func publicAlerts(list []ops.Incident, id opaque) []ops.Incident {
	out := []ops.Incident{}
	for _, in := range list {
		p := ops.Incident{ID: id.incident(in.Fingerprint), Status: in.Status, Fired: in.Fired, Fingerprint: id.of(in.Fingerprint),
			Rule: in.Rule, Severity: in.Severity, State: in.State,
			Count: in.Count, Threshold: in.Threshold, Window: in.Window, FirstSeen: in.FirstSeen, LastSeen: in.LastSeen,
			Updated: in.Updated, Explanation: fmt.Sprintf("%s: %d in %s (threshold %d)", in.Rule, in.Count, in.Window, in.Threshold),
			Records: in.Records, Excerpt: []string{}}
		if in.Ack != nil {
			p.Ack = &ops.Ack{Fingerprint: p.Fingerprint, By: in.Ack.By, At: in.Ack.At}
		}
		out = append(out, p)
	}
	return out
}

func publicSnapshots(list []ops.SnapshotTarget, id opaque) []ops.SnapshotTarget {
	out := []ops.SnapshotTarget{}
	for _, t := range list {
		p := ops.SnapshotTarget{Name: t.Name, Kind: t.Kind, Target: t.Target, Tiers: []ops.SnapshotTier{}}
		if t.Error != "" {
			p.Error = "the target could not be listed"
		}
		for _, tier := range t.Tiers {
			pt := ops.SnapshotTier{Name: tier.Name, Newest: tier.Newest, RPOSeconds: tier.RPOSeconds, RPO: tier.RPO,
				Earliest: tier.Earliest, Snapshots: []ops.SnapshotInfo{}}
			for _, s := range tier.Snapshots {
				pt.Snapshots = append(pt.Snapshots, ops.SnapshotInfo{ID: id.snapshot(s.ID), Target: s.Target, Time: s.Time,
					Status: s.Status, Trigger: s.Trigger, Keep: s.Keep})
			}
			p.Tiers = append(p.Tiers, pt)
		}
		if r := t.LastRestore; r != nil {
			p.LastRestore = &ops.Restore{ID: r.ID, Target: r.Target, Source: id.snapshot(r.Source), NewName: r.NewName, By: r.By,
				Started: r.Started, Finished: r.Finished, Status: r.Status, RecoveryPoint: r.RecoveryPoint,
				RPOSeconds: r.RPOSeconds, RTOSeconds: r.RTOSeconds}
		}
		out = append(out, p)
	}
	return out
}

func publicMigrations(list []ops.Migration) []ops.Migration {
	out := []ops.Migration{}
	for _, m := range list {
		p := ops.Migration{ID: m.ID, Name: m.Name, RequestedBy: m.RequestedBy, RequestedAt: m.RequestedAt,
			Status: m.Status, DecidedBy: m.DecidedBy, DecidedAt: m.DecidedAt, ValidUntil: m.ValidUntil}
		for _, r := range m.Runs {
			p.Runs = append(p.Runs, ops.MigrationRun{By: r.By, Started: r.Started, Finished: r.Finished,
				Snapshot: r.Snapshot, Outcome: r.Outcome})
		}
		out = append(out, p)
	}
	return out
}

// opaque replaces alert fingerprints with identifiers that say nothing about the alert: an
// HMAC under a key drawn for one Publish and then forgotten. Within one publication an alert
// keeps one identifier; across publications they differ.
type opaque []byte

func newOpaque() opaque {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return k
}

func (k opaque) of(fingerprint string) string {
	return "alert-" + k.sum("fingerprint", fingerprint, 8)
}

// incident stands for the incident id of the alert with fingerprint: the same alert has the
// same one in state.json and alerts.json.
func (k opaque) incident(fingerprint string) string {
	return k.sum("incident", fingerprint, 5)
}

// anomalySuffix is the end of an anomaly snapshot's id: its time, then the first 8 hex digits
// of the fingerprint of the alert it was taken for.
var anomalySuffix = regexp.MustCompile(`-anomaly-[0-9]{8}t[0-9]{6}z-([0-9a-f]{8})$`)

// snapshot stands for a snapshot id: an anomaly snapshot's fingerprint digits (32 bits of a
// hash of the alert's key) are replaced; every other id is the provider's, made of the
// config and times only. A published anomaly snapshot is restored from the agent's own panel
// or CLI, which show its real id.
func (k opaque) snapshot(id string) string {
	m := anomalySuffix.FindStringSubmatchIndex(id)
	if m == nil {
		return id
	}
	return id[:m[2]] + "x" + k.sum("snapshot", id[m[2]:m[3]], 4)[1:]
}

func (k opaque) sum(purpose, fingerprint string, n int) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(fingerprint))
	return hex.EncodeToString(m.Sum(nil)[:n])
}
