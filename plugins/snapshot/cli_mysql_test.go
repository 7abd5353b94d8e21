package snapshot_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/plugins/snapshot/internal/mysqltest"
)

// TestCLIRepairOnMariaDB runs the operator's commands against a real MariaDB through the
// mysql provider: tda snapshot create, the damage, tda restore into a new database, tda repair
// (plan, then -apply with its pre-repair snapshot), and a second plan that finds nothing.
func TestCLIRepairOnMariaDB(t *testing.T) {
	s := mysqltest.Require(t)
	t.Cleanup(mysqltest.Stop)
	if testing.Short() {
		t.Skip("builds the agent")
	}
	live := s.CreateDatabase(t, "tda_cli")
	hashes := map[int]string{}
	stmts := []string{
		"CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, password_hash VARCHAR(100) NOT NULL, updated_at DATETIME(6) NOT NULL)",
		"CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE)",
	}
	for id := 1; id <= 10; id++ {
		h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("password-%d", id)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hashes[id] = string(h)
		stmts = append(stmts, fmt.Sprintf("INSERT INTO users VALUES (%d, 'u%d@example.com', '%s', '2030-01-01 08:00:00')", id, id, h),
			fmt.Sprintf("INSERT INTO orders VALUES (%d, %d)", 100+id, id))
	}
	s.Exec(t, live, stmts...)

	bins := agenttest.Build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tda.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
agent {
  data_dir = %q
}
sink "snapshot" "guard" {
  poll_interval = "50ms"
  mysql {
    host     = %q
    port     = %d
    user     = %q
    database = %q
  }
}
`, filepath.Join(dir, "data"), s.Host, s.Port, s.User, live)), 0o600); err != nil {
		t.Fatal(err)
	}
	tda := func(args ...string) string {
		t.Helper()
		code, out, errOut := agenttest.RunCLI(t, bins, dir, args...)
		if code != 0 {
			t.Fatalf("tda %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	tda("snapshot", "create", "-config", cfg, "-by", "tester")
	var listing struct {
		Tiers []struct {
			Name      string `json:"name"`
			Snapshots []struct {
				ID string `json:"id"`
			} `json:"snapshots"`
		} `json:"tiers"`
	}
	snapshotsOf := func(tier string) []string {
		if err := json.Unmarshal([]byte(tda("snapshot", "list", "-config", cfg, "-json")), &listing); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tr := range listing.Tiers {
			for _, sn := range tr.Snapshots {
				if tr.Name == tier {
					ids = append(ids, sn.ID)
				}
			}
		}
		return ids
	}
	manual := snapshotsOf("manual")
	if len(manual) != 1 {
		t.Fatalf("manual snapshots: %v", manual)
	}

	// The incident at 10:00 resets users 1 to 5 and deletes users 7 and 8 (their orders go
	// with them); user 3 sets a new password of their own at 11:00.
	s.Exec(t, live,
		"UPDATE users SET password_hash = 'x', updated_at = '2030-01-01 10:00:00' WHERE id <= 5",
		"DELETE FROM users WHERE id IN (7, 8)",
		"UPDATE users SET password_hash = 'mine', updated_at = '2030-01-01 11:00:00' WHERE id = 3")
	restored := live + "_r"
	t.Cleanup(func() { s.Exec(t, "", "DROP DATABASE IF EXISTS `"+restored+"`") })
	out := tda("restore", "-config", cfg, "-snapshot", manual[0], "-to", restored, "-yes", "-by", "tester", "-reason", "test")
	if !strings.Contains(out, "RPO achieved") {
		t.Fatalf("restore report:\n%s", out)
	}
	repairArgs := []string{"repair", "-config", cfg, "-restore", restored, "-keys", "1,2,3,4,5,7,8",
		"-from", "2030-01-01T09:59:00Z", "-until", "2030-01-01T10:01:00Z"}
	plan := tda(repairArgs...)
	if !strings.Contains(plan, "4 to repair, 4 missing to re-insert, 1 skipped") || !strings.Contains(plan, "Dry run: nothing was written") {
		t.Fatalf("plan:\n%s", plan)
	}
	out = tda(append(repairArgs, "-apply", "-yes", "-by", "tester", "-reason", "test")...)
	if !strings.Contains(out, "Verified: all 8 written rows hold the restored values") {
		t.Fatalf("apply:\n%s", out)
	}
	db, err := sql.Open("mysql", s.DSN(live))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id := 1; id <= 10; id++ {
		var h string
		if err := db.QueryRow("SELECT password_hash FROM users WHERE id = ?", id).Scan(&h); err != nil {
			t.Fatalf("user %d: %v", id, err)
		}
		if want := hashes[id]; (id == 3 && h != "mine") || (id != 3 && h != want) {
			t.Errorf("user %d: %q after the repair", id, h)
		}
	}
	var orders int
	if err := db.QueryRow("SELECT COUNT(*) FROM orders WHERE user_id IN (7, 8)").Scan(&orders); err != nil || orders != 2 {
		t.Errorf("orders of the re-inserted users: %d %v", orders, err)
	}
	if again := tda(repairArgs...); !strings.Contains(again, "0 to repair, 0 missing to re-insert, 1 skipped") {
		t.Fatalf("second plan:\n%s", again)
	}
	if pre := snapshotsOf("pre-repair"); len(pre) != 1 {
		t.Fatalf("pre-repair snapshots: %v", pre)
	}
	if audit := tda("audit", "-config", cfg); !strings.Contains(audit, "repair.run") {
		t.Fatalf("audit:\n%s", audit)
	}
}
