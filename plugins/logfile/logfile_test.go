package logfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/logfile"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func TestFileName(t *testing.T) {
	tests := []struct{ origin, want string }{
		{"flask_web_1", "flask_web_1.log"},
		{"spring-web-1", "spring-web-1.log"},
		{"/var/log/app/x.log", "var_log_app_x.log"},
		{"../../etc/passwd", "_.._etc_passwd.log"},
		{"", "unknown.log"},
		{"a b:c", "a_b_c.log"},
	}
	for _, tt := range tests {
		if got := logfile.FileName(tt.origin, ".log"); got != tt.want {
			t.Errorf("FileName(%q) = %q, want %q", tt.origin, got, tt.want)
		}
	}
}

func TestOneFilePerOriginWithTimestamps(t *testing.T) {
	dir := t.TempDir()
	s := sdktest.NewSink(t, logfile.Component(), "dir = \""+dir+"\"\ninclude_stream = true\nmax_open_files = 1")
	ts := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	events := []sdk.Event{
		{Time: ts, Kind: sdk.KindLog, Origin: "flask_web_1", Stream: "stdout", Line: []byte("GET / 200")},
		{Time: ts, Kind: sdk.KindLog, Origin: "spring-web-1", Stream: "stderr", Line: []byte("bad \xff byte")},
		{Time: ts.Add(time.Second), Kind: sdk.KindLog, Origin: "flask_web_1", Stream: "stdout", Line: []byte("POST /login 401")},
	}
	if err := s.Write(events...); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(events[0]); err != nil {
		t.Fatal(err)
	}
	flask, _ := os.ReadFile(filepath.Join(dir, "flask_web_1.log"))
	want := "2026-11-29T10:00:00.123456789Z stdout GET / 200\n" +
		"2026-11-29T10:00:01.123456789Z stdout POST /login 401\n" +
		"2026-11-29T10:00:00.123456789Z stdout GET / 200\n"
	if string(flask) != want {
		t.Fatalf("flask_web_1.log:\n%s\nwant:\n%s", flask, want)
	}
	spring, _ := os.ReadFile(filepath.Join(dir, "spring-web-1.log"))
	if string(spring) != "2026-11-29T10:00:00.123456789Z stderr bad \xff byte\n" {
		t.Fatalf("spring-web-1.log keeps bytes as they came: %q", spring)
	}
}

func TestConfig(t *testing.T) {
	d := sdktest.Validate(t, logfile.Component(), "dir = \"x\"\nsuffix = \"/x\"")
	if len(d) != 1 || !strings.Contains(d[0], "suffix must not contain a path separator") {
		t.Fatalf("diagnostics %v", d)
	}
}
