package email_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server (github.com/emersion/go-smtp) on 127.0.0.1 that records
// every transaction and can be told to refuse recipients or messages.
type mailServer struct {
	Addr   string
	CAFile string // PEM of the CA that signed the server's certificate

	srv *smtp.Server

	mu       sync.Mutex
	received []received
	rcptErr  func(to string) error
	dataErr  error
	users    map[string]string
	mechs    []string
	authUsed []string
}

type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

type serverOptions struct {
	implicitTLS bool
	noTLS       bool // no STARTTLS offered
	insecure    bool // AUTH allowed without TLS
}

func newMailServer(t *testing.T, o serverOptions) *mailServer {
	t.Helper()
	m := &mailServer{users: map[string]string{"tda@example.com": "s3cret"}, mechs: []string{sasl.Plain, sasl.Login}}
	cert, caFile := testCertificate(t)
	m.CAFile = caFile
	m.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{m: m, conn: c, tlsAtStart: isTLS}, nil
	}))
	m.srv.Domain = "mx.test"
	m.srv.ReadTimeout = 10 * time.Second
	m.srv.WriteTimeout = 10 * time.Second
	m.srv.AllowInsecureAuth = o.insecure
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !o.noTLS && !o.implicitTLS {
		m.srv.TLSConfig = tlsConfig
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicitTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	m.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = m.srv.Close()
		<-done
	})
	return m
}

// Received returns the messages accepted so far.
func (m *mailServer) Received() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.received...)
}

func (m *mailServer) set(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn()
}

type session struct {
	m          *mailServer
	conn       *smtp.Conn
	tlsAtStart bool
	user       string
	cur        received
}

func (s *session) AuthMechanisms() []string {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.mechs
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.m.mu.Lock()
		defer s.m.mu.Unlock()
		s.m.authUsed = append(s.m.authUsed, mech)
		if want, ok := s.m.users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = received{From: from, TLS: isTLS || s.tlsAtStart, User: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	fn := s.m.rcptErr
	s.m.mu.Unlock()
	if fn != nil {
		if err := fn(to); err != nil {
			return err
		}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.dataErr != nil {
		return s.m.dataErr
	}
	s.cur.Data = data
	s.m.received = append(s.m.received, s.cur)
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism, which go-sasl does not provide:
// it takes the username as an initial response or asks for it, then asks for the password.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case !l.gotUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	case !l.finished:
		l.finished = true
		return nil, true, l.check(l.user, string(response))
	}
	return nil, true, errors.New("unexpected LOGIN response")
}

// testCertificate makes a CA and a server certificate for 127.0.0.1 and localhost, and writes
// the CA to a PEM file.
func testCertificate(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tda test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	var caPEM bytes.Buffer
	_ = pem.Encode(&caPEM, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}
