package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTuneConfig(t *testing.T) string {
	t.Helper()
	detect, err := os.ReadFile(filepath.Join("..", "..", "configs", "detect.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(detect) + `
source "file" "logs" { paths = ["./logs/*.log"] }
sink "jsonl" "audit" { path = "./alerts.jsonl" }
pipeline "detect" {
  from    = [source.file.logs]
  through = [processor.override.flags, processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
`
	path := filepath.Join(t.TempDir(), "tda.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTuneCommand(t *testing.T) {
	withDetectPlugins(t)
	cfg := writeTuneConfig(t)
	corpus, _ := filepath.Glob(filepath.Join("..", "..", "plugins", "detect", "testdata", "corpus", "*.log"))
	var out, errOut bytes.Buffer
	if code := Main(append([]string{"tune", "-config", cfg}, corpus...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"mass_password_reset", "auth_failures", "203.0.113.9 (8)", "SUGGESTED"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := Main(append([]string{"tune", "-config", cfg, "-json", "-margin", "1"}, corpus...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep struct {
		Rules []struct {
			Rule      string `json:"rule"`
			Incidents int    `json:"incidents"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Rules) != 6 { // the six shipped rules
		t.Fatalf("json report: %v\n%s", err, out.String())
	}
}

func TestTuneCommandErrors(t *testing.T) {
	withDetectPlugins(t)
	cfg := writeTuneConfig(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tune", "-config", cfg}, "name at least one log file"},
		{[]string{"tune", "-config", cfg, "-processor", "nope", "x.log"}, `no processor "rules" "nope"`},
		{[]string{"tune", "-config", cfg, "/does/not/exist.log"}, "no such file"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := Main(tt.args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut.String(), tt.want)
		}
	}
	// A semantic error in the rules block is reported at its position.
	bad := strings.Replace(mustRead(t, cfg), `unless    = "actor_role == admin"`, `unless    = "actor_role =="`, 1)
	path := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"tune", "-config", path, "x.log"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "invalid condition") || !strings.Contains(errOut.String(), "bad.hcl:") {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
