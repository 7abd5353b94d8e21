package nats_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/plugins/nats/natstest"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// operator is a decentralised-auth setup: an operator, its system account and an account
// with JetStream, whose users log in with .creds files.
type operator struct {
	op, account nkeys.KeyPair
	claims      *jwt.OperatorClaims
	resolver    *server.MemAccResolver
	sysPub      string
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	o := &operator{op: must(nkeys.CreateOperator()), account: must(nkeys.CreateAccount()), resolver: &server.MemAccResolver{}}
	o.claims = jwt.NewOperatorClaims(must(o.op.PublicKey()))
	o.claims.Name = "tda-test"
	sys := must(nkeys.CreateAccount())
	o.sysPub = must(sys.PublicKey())
	sc := jwt.NewAccountClaims(o.sysPub)
	sc.Name = "SYS"
	o.claims.SystemAccount = o.sysPub
	ac := jwt.NewAccountClaims(must(o.account.PublicKey()))
	ac.Name = "TDA"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	for pub, c := range map[string]*jwt.AccountClaims{o.sysPub: sc, ac.Subject: ac} {
		if err := o.resolver.Store(pub, must(c.Encode(o.op))); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func (o *operator) configure(opts *server.Options) {
	opts.TrustedOperators = []*jwt.OperatorClaims{o.claims}
	opts.AccountResolver = o.resolver
	opts.SystemAccount = o.sysPub
}

// creds returns a .creds file of a new user of account signer, expiring at expires (zero:
// never).
func creds(t *testing.T, signer nkeys.KeyPair, expires time.Time) []byte {
	t.Helper()
	u := must(nkeys.CreateUser())
	uc := jwt.NewUserClaims(must(u.PublicKey()))
	if !expires.IsZero() {
		uc.Expires = expires.Unix()
	}
	return must(jwt.FormatUserConfig(must(uc.Encode(signer)), must(u.Seed())))
}

// testPKI makes a CA, a server certificate for 127.0.0.1 and a client certificate, and
// writes the CA and the client's certificate and key to dir.
func testPKI(t *testing.T, dir string) (caFile string, ca *x509.CertPool, serverCert tls.Certificate, clientCert, clientKey string) {
	t.Helper()
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tda test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey))
	caCert := must(x509.ParseCertificate(caDER))
	ca = x509.NewCertPool()
	ca.AddCert(caCert)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature}
		return must(x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)), key
	}
	sDER, sKey := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	cDER, cKey := leaf(3, "edge web-1", x509.ExtKeyUsageClientAuth)
	caFile = writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	clientCert = writeFile(t, dir, "client.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cDER}))
	clientKey = writeFile(t, dir, "client-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(cKey))}))
	return caFile, ca, tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}, clientCert, clientKey
}

// A credential file that is missing, unreadable or of the wrong kind is a diagnostic on its
// attribute that says what the file should hold.
func TestCredentialFileDiagnostics(t *testing.T) {
	dir := t.TempDir()
	op := newOperator(t)
	user := must(nkeys.CreateUser())
	account := must(nkeys.CreateAccount())
	good := creds(t, op.account, time.Time{})
	files := map[string]string{
		"user.nk":      writeFile(t, dir, "user.nk", must(user.Seed())),
		"account.nk":   writeFile(t, dir, "account.nk", must(account.Seed())),
		"garbage":      writeFile(t, dir, "garbage", []byte("not a key\n")),
		"good.creds":   writeFile(t, dir, "good.creds", good),
		"expired":      writeFile(t, dir, "expired.creds", creds(t, op.account, time.Now().Add(-time.Hour))),
		"seed only":    writeFile(t, dir, "seed-only.creds", must(user.Seed())),
		"mixed":        writeFile(t, dir, "mixed.creds", append(good[:strings.Index(string(good), "-----BEGIN USER NKEY SEED")], creds(t, op.account, time.Time{})[strings.Index(string(good), "-----BEGIN USER NKEY SEED"):]...)),
		"not pem":      writeFile(t, dir, "ca.pem", []byte("hello")),
		"missing":      filepath.Join(dir, "does-not-exist"),
		"a directory":  dir,
		"client.pem":   writeFile(t, dir, "client.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
		"client-k.pem": writeFile(t, dir, "client-k.pem", []byte("nope")),
	}
	const base = `servers = ["nats://127.0.0.1:4222"]` + "\n" + `host = "web-1"` + "\n"
	tests := []struct {
		name, src, want string // want "" means valid
	}{
		{"user seed", fmt.Sprintf("nkey_seed_file = %q", files["user.nk"]), ""},
		{"seed file missing", fmt.Sprintf("nkey_seed_file = %q", files["missing"]), "nkey_seed_file: cannot read the nkey seed"},
		{"account seed", fmt.Sprintf("nkey_seed_file = %q", files["account.nk"]), "holds the seed of an account (SA...), not of a user"},
		{"not a seed", fmt.Sprintf("nkey_seed_file = %q", files["garbage"]), "holds no nkey seed"},
		{"seed file is a directory", fmt.Sprintf("nkey_seed_file = %q", files["a directory"]), "is not a regular file"},
		{"creds", fmt.Sprintf("creds_file = %q", files["good.creds"]), ""},
		{"creds missing", fmt.Sprintf("creds_file = %q", files["missing"]), "creds_file: cannot read the creds file"},
		{"creds without JWT", fmt.Sprintf("creds_file = %q", files["seed only"]), "holds no user JWT"},
		{"creds expired", fmt.Sprintf("creds_file = %q", files["expired"]), "the user JWT expired"},
		{"creds of two users", fmt.Sprintf("creds_file = %q", files["mixed"]), "the seed is not the JWT's user"},
		{"CA not PEM", fmt.Sprintf("tls_ca = %q", files["not pem"]), "holds no PEM certificate"},
		{"CA missing", fmt.Sprintf("tls_ca = %q", files["missing"]), "tls_ca: cannot read the CA file"},
		{"client cert unreadable", fmt.Sprintf("tls_cert = %q\ntls_key = %q", files["client.pem"], files["client-k.pem"]), "tls_cert: cannot load the client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, comp := range []sdk.Component{nats.SinkComponent(), nats.SourceComponent()} {
				src := base + tt.src
				if comp.Kind == sdk.KindSource {
					src = strings.Replace(src, `host = "web-1"`, `member = "d1"`, 1)
				}
				got := strings.Join(sdktest.Validate(t, comp, src), "\n")
				switch {
				case tt.want == "" && got != "":
					t.Fatalf("%s: valid config reported %s", comp.Kind, got)
				case tt.want != "" && !strings.Contains(got, tt.want):
					t.Fatalf("%s: diagnostics %q do not contain %q", comp.Kind, got, tt.want)
				}
			}
		})
	}
}

// writeOnce writes one detection event through a new sink with the given settings and
// returns the error once the client connected or was refused.
func writeOnce(t *testing.T, servers, settings string) error {
	t.Helper()
	sink := sdktest.NewSink(t, nats.SinkComponent(), fmt.Sprintf("servers = %s\nhost = \"web-1\"\nconnect_timeout = \"1s\"\n%s", servers, settings),
		sdktest.WithMode(sdktest.Direct))
	ev := detection("password_changed", "/var/log/app.log", time.Now().UTC(), 1)
	var err error
	for range 40 {
		if err = sink.Write(ev); err == nil || strings.Contains(err.Error(), "refuses") || strings.Contains(err.Error(), "TLS with NATS fails") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Live credentials against the embedded server: an nkey seed file, a .creds file of an
// operator's account (decentralised auth, JetStream in the account) and a client certificate
// (mutual TLS). The right ones publish, and a detector reads with them; the wrong ones give
// an error that says the server refused them and what to check.
func TestLiveCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	user := must(nkeys.CreateUser())
	stranger := must(nkeys.CreateUser())
	nkeyServer, err := natstest.StartWith(filepath.Join(dir, "nkey"), 1, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: must(user.PublicKey())}}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nkeyServer.Shutdown)

	op := newOperator(t)
	credsServer, err := natstest.StartWith(filepath.Join(dir, "creds"), 1, op.configure)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(credsServer.Shutdown)
	otherAccount := must(nkeys.CreateAccount()) // never registered with the server

	caFile, ca, serverCert, clientCert, clientKey := testPKI(t, dir)
	mtlsServer, err := natstest.StartWith(filepath.Join(dir, "mtls"), 1, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 2
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mtlsServer.Shutdown)
	mtls := strings.ReplaceAll(mtlsServer.HCLServers(), "nats://", "tls://")

	files := map[string]string{
		"user.nk":     writeFile(t, dir, "user.nk", must(user.Seed())),
		"stranger.nk": writeFile(t, dir, "stranger.nk", must(stranger.Seed())),
		"good.creds":  writeFile(t, dir, "good.creds", creds(t, op.account, time.Time{})),
		"other.creds": writeFile(t, dir, "other.creds", creds(t, otherAccount, time.Time{})),
	}
	tests := []struct {
		name, servers, settings string
		want                    string // "" means accepted
	}{
		{"nkey seed", nkeyServer.HCLServers(), fmt.Sprintf("nkey_seed_file = %q", files["user.nk"]), ""},
		{"unknown nkey", nkeyServer.HCLServers(), fmt.Sprintf("nkey_seed_file = %q", files["stranger.nk"]), "NATS refuses the connection"},
		{"creds", credsServer.HCLServers(), fmt.Sprintf("creds_file = %q", files["good.creds"]), ""},
		{"creds of an unknown account", credsServer.HCLServers(), fmt.Sprintf("creds_file = %q", files["other.creds"]), "NATS refuses the connection"},
		{"no creds", credsServer.HCLServers(), "", "NATS refuses the connection"},
		{"client certificate", mtls, fmt.Sprintf("tls_ca = %q\ntls_cert = %q\ntls_key = %q", caFile, clientCert, clientKey), ""},
		{"no client certificate", mtls, fmt.Sprintf("tls_ca = %q", caFile), "check tls_ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := writeOnce(t, tt.servers, tt.settings)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if err != nil {
				t.Logf("%v", err)
			}
			if tt.want != "" {
				return
			}
			// A detector with the same credentials reads what the edge published.
			src := sdktest.NewSource(t, nats.SourceComponent(), fmt.Sprintf("servers = %s\nmember = \"d1\"\nlease_ttl = \"1s\"\nconnect_timeout = \"1s\"\n%s", tt.servers, tt.settings),
				sdktest.WithMode(sdktest.Direct))
			src.Start(nil)
			if got := src.Collect(1, 15*time.Second); len(got) != 1 {
				t.Fatalf("the detector read %d events with the same credentials", len(got))
			}
		})
	}

	// A detector whose credentials the server refuses says so in its state.
	src := sdktest.NewSource(t, nats.SourceComponent(), fmt.Sprintf("servers = %s\nmember = \"d2\"\nconnect_timeout = \"1s\"\ncreds_file = %q", credsServer.HCLServers(), files["other.creds"]),
		sdktest.WithMode(sdktest.Direct))
	src.Start(nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		src.Next(200 * time.Millisecond)
		if st := src.Status(); st != nil && !st.Healthy && strings.Contains(st.Reason, "NATS refuses the connection") && strings.Contains(st.Reason, "creds_file") {
			t.Logf("refused detector: %s", st.Reason)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused detector reports %+v", src.Status())
		}
	}
}
