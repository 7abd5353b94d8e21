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

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/plugins/nats/natstest"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// testCA makes a CA and a server certificate for 127.0.0.1; it writes the CA's PEM to dir.
func testCA(t *testing.T, dir string) (caFile string, serverCert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tda test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A server that speaks TLS only: the CA in tls_ca makes the sink trust it; without it the
// error names the certificate problem.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, cert := testCA(t, dir)
	c, err := natstest.StartWith(filepath.Join(dir, "nats"), 1, func(o *server.Options) {
		o.TLS = true
		o.TLSTimeout = 2
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	servers := strings.ReplaceAll(c.HCLServers(), "nats://", "tls://")
	tests := []struct {
		name string
		conf string
		want string // "" means accepted
	}{
		{"trusted CA", fmt.Sprintf("tls_ca = %q", caFile), ""},
		{"unknown CA", "", "check tls_ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := sdktest.NewSink(t, nats.SinkComponent(), fmt.Sprintf("servers = %s\nhost = \"web-1\"\nconnect_timeout = \"1s\"\n%s", servers, tt.conf),
				sdktest.WithMode(sdktest.Direct))
			ev := detection("password_changed", "/var/log/app.log", time.Now().UTC(), 1)
			var err error
			for range 30 {
				if err = sink.Write(ev); err == nil || strings.Contains(err.Error(), tt.want) && tt.want != "" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one naming the %s", err, tt.want)
			}
			if err != nil {
				t.Logf("error: %v", err)
			}
		})
	}
}
