package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hcli "github.com/hashicorp/cli"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// snapshotConfig writes a config whose snapshot sink protects an Aurora cluster served by the
// RDS double, and returns its path.
func snapshotConfig(t *testing.T, srv *rdstest.Server) string {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("TDA_APP_VERSION", "")
	withSnapshotPlugin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tda.hcl")
	src := `
agent {
  data_dir    = "` + filepath.Join(dir, "data") + `"
  app_version = "4.2.0"
}
plugin "snapshot" {
  inherit_env = ["AWS_*"]
}
sink "snapshot" "guard" {
  poll_interval = "2ms"
  aurora {
    cluster  = "prod-aurora"
    region   = "eu-west-1"
    endpoint = "` + srv.URL + `"
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withSnapshotPlugin makes the plugins the commands' configs use, built for the test, the
// ones they find (they run without the plugins built into tda): the snapshot sink, and the
// file source and jsonl sink of the configs with an audit trail.
func withSnapshotPlugin(t *testing.T) {
	t.Helper()
	t.Setenv("TDA_PLUGIN_DIR", agenttest.Build(t, "snapshot", "file", "jsonl").PluginDir)
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSnapshotCommands(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	cfg := snapshotConfig(t, srv)

	code, out, errOut := runCLI("snapshot", "create", "-config", cfg)
	if code != 0 || !strings.Contains(out, "status          available") || !strings.Contains(out, "tag app_version 4.2.0") ||
		!strings.Contains(out, "tag trigger     manual") {
		t.Fatalf("create: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI("snapshot", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, "Quota: ManualClusterSnapshots 1 of 100 used") ||
		!strings.Contains(out, "point-in-time       RPO 3m") || !strings.Contains(out, "manual              RPO") {
		t.Fatalf("list: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI("snapshot", "list", "-config", cfg, "-json")
	var listing snapshotapi.Listing
	if code != 0 || json.Unmarshal([]byte(out), &listing) != nil {
		t.Fatalf("list -json: %d\n%s\n%s", code, out, errOut)
	}
	manual := 0
	for _, tier := range listing.Tiers {
		for _, s := range tier.Snapshots {
			if s.Trigger == "manual" && s.Managed && s.Status == "available" && s.Keep {
				manual++
			}
		}
	}
	if listing.Kind != "aurora" || listing.Target != "prod-aurora" || manual != 1 || listing.Quota == nil ||
		listing.Quota.Used != 1 {
		t.Fatalf("list -json: %+v", listing)
	}
	code, out, _ = runCLI("snapshot", "prune", "-config", cfg, "-dry-run")
	if code != 0 || !strings.Contains(out, "Dry run") || !strings.Contains(out, "1 kept, 0 to delete.") {
		t.Fatalf("prune: %d\n%s", code, out)
	}

	// Restore the snapshot just taken into a new cluster.
	var id string
	for _, r := range srv.Requests() {
		if r.Action == "CreateDBClusterSnapshot" {
			id = r.Params.Get("DBClusterSnapshotIdentifier")
		}
	}
	code, out, errOut = runCLI("restore", "-config", cfg, "-snapshot", id, "-to", "prod-restored", "-yes",
		"-by", "dana", "-reason", "restore drill")
	if code != 0 || !strings.Contains(out, "Restore plan (aurora)") || !strings.Contains(out, "RPO achieved") ||
		!strings.Contains(out, "instance prod-restored-instance-1") {
		t.Fatalf("restore: %d\n%s\n%s", code, out, errOut)
	}
	if _, ok := srv.Instance("prod-restored-instance-1"); !ok {
		t.Fatal("no instance created")
	}
	// The snapshot and the restore the CLI ran are in the audit log, with who and why.
	code, out, errOut = runCLI("audit", "-config", cfg)
	if code != 0 || !strings.Contains(out, "restore.run") || !strings.Contains(out, "dana") ||
		!strings.Contains(out, "restore drill") || !strings.Contains(out, "snapshot.create") {
		t.Fatalf("audit: %d\n%s\n%s", code, out, errOut)
	}

	// Without an approved request nothing runs and no snapshot is taken.
	code, _, errOut = runCLI("migrate", "run", "-config", cfg, "-name", "V9", "-by", "carol", "--", "sh", "-c", "echo migrating")
	if code != 1 || !strings.Contains(errOut, "migration not started") || !strings.Contains(errOut, "no valid approved request") {
		t.Fatalf("unapproved migrate run: %d\n%s", code, errOut)
	}
	for _, r := range srv.Requests() {
		if r.Action == "CreateDBClusterSnapshot" && strings.Contains(r.Params.Get("DBClusterSnapshotIdentifier"), "pre-migration") {
			t.Fatal("an unapproved migration took a snapshot")
		}
	}
	if code, out, errOut := runCLI("migrate", "request", "-config", cfg, "-name", "V9", "-by", "alice"); code != 0 {
		t.Fatalf("request: %s %s", out, errOut)
	}
	if code, out, errOut := runCLI("migrate", "approve", "1", "-config", cfg, "-by", "bob", "-reason", "reviewed"); code != 0 {
		t.Fatalf("approve: %s %s", out, errOut)
	}

	// A failing migration prints the restore command and exits with the migration's status.
	time.Sleep(1100 * time.Millisecond)
	code, out, errOut = runCLI("migrate", "run", "-config", cfg, "-name", "V9", "-by", "carol", "--", "sh", "-c", "echo migrating; exit 4")
	if code != 4 || !strings.Contains(out, "migrating") ||
		!strings.Contains(errOut, "tda restore -config "+cfg+" -target guard -snapshot tda-prod-aurora-pre-migration-") ||
		!strings.Contains(errOut, "-to prod-aurora-restored-") {
		t.Fatalf("migrate run: %d\n%s\n%s", code, out, errOut)
	}
	// The request records the run, its pre-migration snapshot and its outcome.
	code, out, _ = runCLI("migrate", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, "failed") || !strings.Contains(out, "1 run by carol") ||
		!strings.Contains(out, "pre-migration snapshot tda-prod-aurora-pre-migration-") {
		t.Fatalf("migrate list: %d\n%s", code, out)
	}
}

func TestRestoreAsksAndRefuses(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	srv.AddSnapshot("tda-s", "prod-aurora", time.Now().Add(-time.Hour), map[string]string{"created_by": "tda", "trigger": "manual"})
	cfg := snapshotConfig(t, srv)

	var out, errOut bytes.Buffer
	env := &Env{UI: &hcli.BasicUi{Reader: strings.NewReader("no\n"), Writer: &out, ErrorWriter: &errOut},
		Stdout: &out, Stderr: &errOut}
	cmd := newCommand(env, "restore")
	if code := cmd.Run([]string{"-config", cfg, "-snapshot", "tda-s", "-to", "prod-restored"}); code != 1 ||
		!strings.Contains(out.String(), "Type yes to restore into prod-restored") || !strings.Contains(out.String(), "nothing was changed") {
		t.Fatalf("declined restore: %d\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, a := range srv.Actions() {
		if strings.HasPrefix(a, "Restore") {
			t.Fatalf("restore ran without confirmation")
		}
	}
	// While a HIGH alert fires unacknowledged (the audit trail of the config), nothing is restored.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfg, "-snapshot", "tda-s", "-to", "prod-aurora", "-yes"}, "restores never overwrite"},
		{[]string{"-config", cfg, "-to-time", "yesterday", "-to", "x", "-yes"}, "not an RFC 3339 time"},
		{[]string{"-config", cfg, "-snapshot", "../../../../x/e", "-to", "x", "-yes"}, `snapshot id "../../../../x/e"`},
		{[]string{"-snapshot", "tda-s", "-to", "x"}, "-config is required"},
		{[]string{"-config", cfg, "-target", "other", "-snapshot", "tda-s", "-to", "x"}, `no sink "snapshot" "other"; its snapshot sinks are: guard`},
	} {
		code, _, errOut := runCLI(append([]string{"restore"}, tt.args...)...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("restore %v: %d %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
	// Last: the incident this opens is kept in the state store (it blocks until someone
	// acknowledges it), and the cases above share that store.
	blocked := filepath.Join(t.TempDir(), "blocked.hcl")
	src, _ := os.ReadFile(cfg)
	trail := filepath.Join(t.TempDir(), "alerts.jsonl")
	now := time.Now().UTC().Format(time.RFC3339Nano)
	alert := `{"ts":"` + now + `","kind":"alert","rule":"bulk_deletion","severity":"HIGH","state":"firing","key":"","count":11,"threshold":10,"window":"1m","first_seen":"` + now + `","last_seen":"` + now + `","origin":"app","source":"file.app","excerpt":[],"fingerprint":"fp1","explanation":"x"}` + "\n"
	if err := os.WriteFile(trail, []byte(alert), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := "\nsource \"file\" \"app\" { paths = [\"/nonexistent/*.log\"] }\nsink \"jsonl\" \"audit\" { path = \"" + trail + "\" }\n" +
		"pipeline \"p\" {\n  from = [source.file.app]\n  to = [sink.jsonl.audit, sink.snapshot.guard]\n}\n"
	if err := os.WriteFile(blocked, append(src, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("restore", "-config", blocked, "-snapshot", "tda-s", "-to", "prod-restored", "-yes"); code != 1 ||
		!strings.Contains(errOut, "the system is blocked") || !strings.Contains(errOut, "bulk_deletion") {
		t.Fatalf("restore while blocked: %d %s", code, errOut)
	}
	for _, a := range srv.Actions() {
		if strings.HasPrefix(a, "Restore") {
			t.Fatalf("restore ran while blocked")
		}
	}
}

func TestSnapshotConfigErrorsArePositioned(t *testing.T) {
	withSnapshotPlugin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tda.hcl")
	src := "sink \"snapshot\" \"guard\" {\n  when_severity = [\"URGENT\"]\n  postgres {\n    database = \"app\"\n  }\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("snapshot", "list", "-config", path)
	if code != 1 || !strings.Contains(errOut, `unknown severity "URGENT"`) || !strings.Contains(errOut, "tda.hcl:2,") {
		t.Fatalf("%d\n%s", code, errOut)
	}
}
