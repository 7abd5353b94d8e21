//go:build linux

package peercred

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// BenchmarkBatchOverSocket moves a 1 MiB batch through a Unix socket as the local channel
// does now (bytes as they are, peer checked once per connection) and as it did with
// go-plugin's AutoMTLS (TLS 1.3 with a P-521 certificate): the per-byte cost that is gone.
func BenchmarkBatchOverSocket(b *testing.B) {
	batch := make([]byte, 1<<20)
	for _, mode := range []string{"peercred", "tls-p521"} {
		b.Run(mode, func(b *testing.B) {
			client, server := pair(b)
			var w, r net.Conn = client, server
			if mode == "tls-p521" {
				cfg := p521Config(b)
				tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
				ts := tls.Server(server, cfg)
				done := make(chan error, 1)
				go func() { done <- ts.Handshake() }()
				if err := tc.Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				w, r = tc, ts
			} else {
				c := Credentials{Check: SameUser(uint32(os.Getuid()), nil)}
				conn, _, err := c.ServerHandshake(server)
				if err != nil {
					b.Fatal(err)
				}
				r = conn
			}
			defer w.Close()
			defer r.Close()
			go io.Copy(io.Discard, r) // ends when the connection closes

			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := w.Write(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func p521Config(b *testing.B) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS13}
}
