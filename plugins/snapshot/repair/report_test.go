package repair

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestWritePlanGolden(t *testing.T) {
	hash := "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	p := &Plan{Scope: Scope{Table: "users", Keys: []Key{{Value: "1"}, {Value: "3"}, {Value: "7"}, {Value: "9"}},
		Window: Window{From: incidentFrom, Until: incidentUntil}},
		Source: "restored app_restored", Live: "live app", KeyColumn: "id", UpdatedAt: "updated_at",
		Columns: []string{"password_hash", "updated_at"},
		Items: []Item{
			{Table: "users", Key: "1", Decision: Repair, Reason: "changed at 2026-11-29T22:57:01.000Z, within the incident",
				Changes: []Change{{Column: "password_hash", Restored: Value{Text: hash}, Live: Value{Text: attackerHash}},
					{Column: "updated_at", Restored: Value{Text: "2026-11-29T20:00:00Z"}, Live: Value{Text: "2026-11-29T22:57:01Z"}}}},
			{Table: "users", Key: "3", Decision: Skip, Reason: "changed again at 2026-11-29T23:10:00.000Z, after the incident's write (2026-11-29T22:57:03.000Z): a legitimate change wins",
				Changes: []Change{{Column: "password_hash", Restored: Value{Text: hash}, Live: Value{Text: "$2b$12$new\x1b[31m"}}}},
			{Table: "users", Key: "9", Decision: Same},
			{Table: "users", Key: "7", Decision: Missing, Reason: "deleted since the snapshot",
				Changes: []Change{{Column: "id", Restored: Value{Text: "7"}}, {Column: "email", Restored: Value{Null: true}}}},
			{Table: "orders", Key: "107", Decision: Missing, Reason: "depends on users 7 (orders.user_id)",
				Changes: []Change{{Column: "id", Restored: Value{Text: "107"}}, {Column: "user_id", Restored: Value{Text: "7"}}}},
		},
		Counts: map[Decision]int{Repair: 1, Skip: 1, Same: 1, Missing: 2}}
	var out bytes.Buffer
	WritePlan(&out, p)
	WriteResult(&out, Result{Repaired: 1, Inserted: 2, Skipped: 1, Via: "sql", Verified: 3,
		Started: incidentUntil, Finished: incidentUntil.Add(42 * time.Millisecond)})
	WriteResult(&out, Result{Repaired: 1, Via: "http", Verified: 0, Mismatches: []string{"users 1: password_hash"}})
	golden := "testdata/plan.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("plan output differs from %s (run with -update after checking):\n%s", golden, out.String())
	}
}
