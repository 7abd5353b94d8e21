package nats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// FuzzCredentialFiles: whatever a credential file holds, the checks answer (accept, or an
// error that names the file) without panicking, and accept a .creds file only when its seed
// is its JWT's user.
func FuzzCredentialFiles(f *testing.F) {
	acc, _ := nkeys.CreateAccount()
	u, _ := nkeys.CreateUser()
	pub, _ := u.PublicKey()
	tok, _ := jwt.NewUserClaims(pub).Encode(acc)
	seed, _ := u.Seed()
	good, _ := jwt.FormatUserConfig(tok, seed)
	f.Add(good)
	f.Add(seed)
	f.Add([]byte("-----BEGIN NATS USER JWT-----\nxx\n------END NATS USER JWT------\n"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "file")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := checkSeedFile(p); err != nil && !strings.Contains(err.Error(), p) && !strings.Contains(err.Error(), "cannot read") {
			t.Fatalf("seed error without the file: %v", err)
		}
		err := checkCredsFile(p, time.Now())
		if err != nil && !strings.Contains(err.Error(), p) && !strings.Contains(err.Error(), "cannot read") {
			t.Fatalf("creds error without the file: %v", err)
		}
		if err == nil {
			token, _ := nkeys.ParseDecoratedJWT(b)
			claims, cerr := jwt.DecodeUserClaims(token)
			kp, kerr := nkeys.ParseDecoratedUserNKey(b)
			if cerr != nil || kerr != nil {
				t.Fatalf("accepted a creds file whose parts do not parse: %v %v", cerr, kerr)
			}
			if pk, _ := kp.PublicKey(); pk != claims.Subject {
				t.Fatal("accepted a creds file whose seed is another user's")
			}
		}
	})
}

// FuzzParseCommitted: committed checkpoint entries of any shape give partitions in range.
func FuzzParseCommitted(f *testing.F) {
	f.Add("nats:TDA_EVENTS:3", []byte("42"))
	f.Add("nats:TDA_EVENTS:-1", []byte("1"))
	f.Add("nats:OTHER:1", []byte("x"))
	s := &Source{cc: connConfig{stream: "TDA_EVENTS", partitions: 8}}
	f.Fuzz(func(t *testing.T, key string, val []byte) {
		for p := range s.parseCommitted(map[string][]byte{key: val}) {
			if p < 0 || p >= 8 {
				t.Fatalf("partition %d out of range from %q", p, key)
			}
		}
	})
}
