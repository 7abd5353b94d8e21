package ops

import (
	"context"
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                  "alice",
		"Alice":                  "alice",
		" ALICE ":                "alice",
		"alice\u200b":            "alice", // zero-width space
		"al\u200dice":            "alice", // zero-width joiner
		"\u202ealice":            "alice", // right-to-left override
		"ali\u00adce":            "alice", // soft hyphen
		"\ufeffalice":            "alice", // byte-order mark
		"ａｌｉｃｅ":                  "alice", // full-width
		"ℌ𝔞𝔩":                    "hal",   // compatibility letters
		"Straße":                 "strasse",
		"zoë":                    "zoë",
		"zoe\u0308":              "zoë", // combining diaeresis composes
		"\u200b":                 "",
		"bob the on-call person": "bob the on-call person",
	} {
		got := NormalizeName(in)
		if got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
		if again := NormalizeName(got); again != got {
			t.Errorf("NormalizeName is not stable on %q: %q", got, again)
		}
	}
}

// FuzzNormalizeName: normalising is stable, and what it returns has no format character left.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"alice", "alice\u200b", "ａｌｉｃｅ", "ΐ", "ﬃ", "\u0345"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeName(s)
		if NormalizeName(n) != n {
			t.Fatalf("NormalizeName(%q) = %q, then %q", s, n, NormalizeName(n))
		}
		for _, r := range n {
			if r == '\u200b' || r == '\u202e' || r == '\ufeff' {
				t.Fatalf("NormalizeName(%q) = %q keeps %U", s, n, r)
			}
		}
	})
}

// TestLookAlikeNamesCannotApproveTheirOwnRequest: with a shared token anyone types a name;
// names that only look different from the requester's are the requester, and the name
// recorded is the normalised one.
func TestLookAlikeNamesCannotApproveTheirOwnRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	m := must(f.svc.RequestMigration(ctx, Actor{Name: "Alice"}, MigrationRequest{Name: "V9", Reason: "index"}))(t)
	if m.RequestedBy != "alice" {
		t.Fatalf("requester recorded as %q", m.RequestedBy)
	}
	for _, name := range []string{"alice\u200b", "ALICE", "ａｌｉｃｅ", "\u202ealice", "al\u00adice", " alice "} {
		_, err := f.svc.DecideMigration(ctx, Actor{Name: name, Via: "token oncall"}, Decision{ID: m.ID, Approve: true, Reason: "ok"})
		wantKind(t, err, KindForbidden)
	}
	for _, name := range []string{"\u200b", "\u200b\u200d"} {
		_, err := f.svc.DecideMigration(ctx, Actor{Name: name}, Decision{ID: m.ID, Approve: true, Reason: "ok"})
		wantKind(t, err, KindInvalid)
	}
	_, err := f.svc.DecideMigration(ctx, Actor{Name: "bob\nalice"}, Decision{ID: m.ID, Approve: true, Reason: "ok"})
	wantKind(t, err, KindInvalid)
	got := must(f.svc.DecideMigration(ctx, Actor{Name: "Bob\u200b"}, Decision{ID: m.ID, Approve: true, Reason: "reviewed"}))(t)
	if got.DecidedBy != "bob" {
		t.Fatalf("approver recorded as %q", got.DecidedBy)
	}
	if byBob := must(f.svc.Audit(ctx, AuditFilter{Actor: "BOB\u200b", Action: ActionMigrationApprove}))(t); len(byBob) != 1 {
		t.Errorf("the audit filter by a look-alike of bob: %+v", byBob)
	}
	entries := must(f.svc.Audit(ctx, AuditFilter{Action: ActionMigrationApprove}))(t)
	for _, e := range entries {
		if e.Actor != "alice" && e.Actor != "bob" {
			t.Errorf("audit shows the name as typed: %q", e.Actor)
		}
	}
}

// TestControlCharactersAreRefused: reasons, comments and names with a control character, a
// line break or a bidirectional override are refused with an invalid-input error that says so,
// by every operation that takes them, and nothing is carried out.
func TestControlCharactersAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	m := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V1"}))(t)
	forged := "ok\nbob      approved  8"
	ops := map[string]func(string) error{
		"request reason": func(s string) error {
			_, err := f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V2", Reason: s})
			return err
		},
		"migration name": func(s string) error {
			_, err := f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: s})
			return err
		},
		"decision reason": func(s string) error {
			_, err := f.svc.DecideMigration(ctx, bob, Decision{ID: m.ID, Approve: false, Reason: s})
			return err
		},
		"ack comment": func(s string) error {
			_, err := f.svc.Acknowledge(ctx, alice, AckRequest{Fingerprint: "fp", Comment: s})
			return err
		},
		"override reason": func(s string) error {
			_, err := f.svc.OverrideOn(ctx, alice, OverrideRequest{Reason: s, TTL: "5m"})
			return err
		},
		"snapshot reason": func(s string) error {
			_, err := f.svc.CreateSnapshot(ctx, alice, SnapshotRequest{Reason: s})
			return err
		},
		"restore reason": func(s string) error {
			_, err := f.svc.StartRestore(ctx, alice, RestoreRequest{SnapshotID: "x", NewName: "y", Reason: s})
			return err
		},
		"recorded reason": func(s string) error {
			_, err := f.svc.RecordAction(ctx, alice, ActionRecord{Action: ActionRestoreRun, Reason: s})
			return err
		},
		"dead letter reason": func(s string) error {
			_, err := f.svc.ReplayDeadLetter(ctx, alice, DeadLetterAction{ID: 1, Reason: s})
			return err
		},
		"name": func(s string) error {
			_, err := f.svc.RequestMigration(ctx, Actor{Name: s}, MigrationRequest{Name: "V3"})
			return err
		},
	}
	before := len(must(f.svc.Audit(ctx, AuditFilter{}))(t))
	for what, op := range ops {
		for _, bad := range []string{forged, "\x1b]0;pwned\x07", "tab\there", "r\u202eevil", "c1\u009b", "bad\xff"} {
			if what == "name" && bad == "r\u202eevil" {
				continue // a format character in a name is removed, not refused
			}
			err := op(bad)
			wantKind(t, err, KindInvalid)
			if err != nil && !strings.Contains(err.Error(), "control character") && !strings.Contains(err.Error(), "UTF-8") {
				t.Errorf("%s %q: the message does not say why: %v", what, bad, err)
			}
		}
	}
	after := must(f.svc.Audit(ctx, AuditFilter{}))(t)
	for _, e := range after[:len(after)-before] {
		if e.Outcome != "refused" {
			t.Errorf("refused input was carried out: %+v", e)
		}
	}
}

// TestApprovalIsUsedOnce: a successful run uses up its approval, by id or by name; a failed
// run may be retried with the same command only; a run that names another revision is
// refused.
func TestApprovalIsUsedOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	cmd := []string{"alembic", "upgrade", "3ab8b2dfb055"}
	m := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "3ab8b2dfb055"}))(t)
	must(f.svc.DecideMigration(ctx, bob, Decision{ID: m.ID, Approve: true, Reason: "ok"}))(t)

	_, err := f.svc.BeginMigration(ctx, alice, BeginMigration{ID: m.ID, Name: "ffff00001111", Command: cmd})
	wantKind(t, err, KindForbidden)

	must(f.svc.BeginMigration(ctx, alice, BeginMigration{ID: m.ID, Command: cmd}))(t)
	must(f.svc.FinishMigration(ctx, alice, FinishMigration{ID: m.ID, Outcome: MigrationFailed, ExitCode: 1}))(t)
	_, err = f.svc.BeginMigration(ctx, alice, BeginMigration{ID: m.ID, Command: []string{"sh", "-c", "psql < drop.sql"}})
	wantKind(t, err, KindForbidden)
	must(f.svc.BeginMigration(ctx, alice, BeginMigration{Name: "3ab8b2dfb055", Command: cmd}))(t)
	must(f.svc.FinishMigration(ctx, alice, FinishMigration{ID: m.ID, Outcome: MigrationSucceeded}))(t)

	for _, again := range []BeginMigration{{ID: m.ID, Command: cmd}, {Name: "3ab8b2dfb055", Command: cmd}, {ID: m.ID}} {
		_, err := f.svc.BeginMigration(ctx, alice, again)
		if err == nil {
			t.Fatalf("the approval ran the migration again: %+v", again)
		}
		if again.ID != "" {
			wantKind(t, err, KindConflict)
			if !strings.Contains(err.Error(), "already ran successfully") {
				t.Errorf("message: %v", err)
			}
		} else {
			wantKind(t, err, KindForbidden)
		}
	}
	// A new request, approved again, runs.
	m2 := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "3ab8b2dfb055", Reason: "once more"}))(t)
	must(f.svc.DecideMigration(ctx, bob, Decision{ID: m2.ID, Approve: true, Reason: "ok"}))(t)
	if got := must(f.svc.BeginMigration(ctx, alice, BeginMigration{Name: "3ab8b2dfb055", Command: cmd}))(t); got.ID != m2.ID {
		t.Fatalf("ran request %s, want %s", got.ID, m2.ID)
	}
}
