package sdk

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSpecAuditTrail(t *testing.T) {
	fields := []Field{{Name: "path", Type: TypeString, Required: true}, {Name: "max_files", Type: TypeInt, Default: 10}}
	tests := []struct {
		name  string
		trail string
		want  string // Check's error; "" for none
	}{
		{"none", "", ""},
		{"a string field", "path", ""},
		{"no such field", "file", `audit_trail "file": name a string field`},
		{"not a string", "max_files", `audit_trail "max_files": name a string field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Spec{Fields: fields, AuditTrail: tc.trail}
			err := s.Check()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v, want %q", err, tc.want)
			}
			// The agent learns it from the plugin's description.
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var back Spec
			if err := json.Unmarshal(b, &back); err != nil || back.AuditTrail != tc.trail {
				t.Fatalf("%s decodes to audit_trail %q (%v)", b, back.AuditTrail, err)
			}
		})
	}
}
