package realapp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCapturedLogs judges the lines of testdata/logs, captured from the app by TestRealApp
// -update, so that the parser is checked against real app lines on every machine, with or
// without Python.
func TestCapturedLogs(t *testing.T) {
	logs := map[string][][]byte{}
	for _, s := range setups {
		data, err := os.ReadFile(filepath.Join("testdata", "logs", s.Name+".log"))
		if err != nil {
			t.Fatalf("%v (capture it with go test ./plugins/detect/realapp -run TestRealApp -update)", err)
		}
		logs[s.Name] = bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	}
	checkSetups(t, logs)
}
