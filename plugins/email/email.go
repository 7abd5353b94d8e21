// Package email is the tda sink that mails alerts over SMTP: one message per batch with a text
// and an HTML part, STARTTLS or implicit TLS, PLAIN or LOGIN authentication and several
// recipients. It is the usual fallback for the slack sink.
//
// No log-derived text reaches a mail header without having its line breaks and control
// characters removed and being MIME-encoded, so a log line cannot add a Bcc or any other
// header. The agent queues, de-duplicates and retries; this sink reports nil when the server
// accepted the message, a plain error for connection failures, timeouts and 4xx replies, and
// sdk.Permanent for 5xx replies and configuration problems (no STARTTLS, a certificate that
// does not verify, rejected credentials).
package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/sdk"
)

// TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
	TLSNone     = "none"
)

// Spec is the email sink's configuration schema.
var Spec = &sdk.Spec{
	Summary: "Mail alerts over SMTP.",
	Description: "Each batch of alerts becomes one message with a text and an HTML part; the " +
		"subject names the severity and rule. The connection uses STARTTLS (default) or " +
		"implicit TLS and authenticates with PLAIN or LOGIN when a username is set.",
	Fields: []sdk.Field{
		{Name: "server", Type: sdk.TypeString, Required: true,
			Description: "The SMTP server as host:port, e.g. \"smtp.example.com:587\". Without a port: 587 for starttls, 465 for implicit, 25 for none."},
		{Name: "tls", Type: sdk.TypeString, Default: TLSStartTLS, Enum: []string{TLSStartTLS, TLSImplicit, TLSNone},
			Description: "\"starttls\" upgrades the connection and refuses servers that cannot; \"implicit\" speaks TLS from the start (port 465); \"none\" only for a relay on a trusted network."},
		{Name: "ca_file", Type: sdk.TypeString,
			Description: "PEM file with the CA certificates that sign the server's certificate, when it is not signed by a public CA."},
		{Name: "username", Type: sdk.TypeString, Sensitive: true,
			Description: "Login for SMTP authentication; no authentication when empty."},
		{Name: "password", Type: sdk.TypeString, Sensitive: true,
			Description: "Password for SMTP authentication: use env(\"SMTP_PASSWORD\") or file(\"/run/secrets/smtp\")."},
		{Name: "auth", Type: sdk.TypeString, Default: "auto", Enum: []string{"auto", "plain", "login"},
			Description: "Authentication mechanism; \"auto\" prefers PLAIN and falls back to LOGIN when the server offers only that."},
		{Name: "from", Type: sdk.TypeString, Required: true,
			Description: "Sender address, e.g. \"tda <tda@example.com>\"."},
		{Name: "to", Type: sdk.TypeStringList, Required: true,
			Description: "Recipient addresses."},
		{Name: "subject_prefix", Type: sdk.TypeString, Default: "[tda]",
			Description: "Put before every subject, for mail filters."},
		{Name: "panel_url", Type: sdk.TypeString,
			Description: "The control panel's URL; each alert links to it (\"{fingerprint}\" is replaced by the alert's fingerprint)."},
		{Name: "excerpt_lines", Type: sdk.TypeInt, Default: 20,
			Description: "Log lines shown per alert."},
		{Name: "max_alerts", Type: sdk.TypeInt, Default: MaxAlertsPerMessage,
			Description: "Alerts shown in full in one message; the others are listed by title."},
		{Name: "hello_name", Type: sdk.TypeString,
			Description: "The name this host gives in EHLO; default: the host name."},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "30s",
			Description: "How long one delivery (connect, TLS, authentication, message) may take."},
	},
	Example: `sink "email" "ops" {
  server   = "smtp.example.com:587"
  username = "tda@example.com"
  password = env("SMTP_PASSWORD")
  from     = "tda <tda@example.com>"
  to       = ["oncall@example.com", "dba@example.com"]
}`,
}

// MaxAlertsPerMessage is the most alerts the agent puts in one message.
const MaxAlertsPerMessage = 100

// Component returns the email sink.
func Component() sdk.Component {
	return sdk.SinkComponent("email", Spec, newSink).
		WithAccepts(sdk.KindAlert).WithQueue(sdk.QueueDurable).WithMaxBatch(MaxAlertsPerMessage)
}

// Sink mails alert batches.
type Sink struct {
	addr, host string
	tlsMode    string
	caFile     string
	username   string
	password   string
	auth       string
	helloName  string
	timeout    time.Duration
	format     Format
	log        hclog.Logger

	tlsConfig *tls.Config
	now       func() time.Time
}

func newSink(c *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	s := &Sink{
		tlsMode:   c.String("tls"),
		caFile:    c.String("ca_file"),
		username:  c.String("username"),
		password:  c.String("password"),
		auth:      c.String("auth"),
		helloName: c.String("hello_name"),
		timeout:   c.Duration("timeout"),
		log:       res.Logger,
		now:       time.Now,
	}
	host, port, err := net.SplitHostPort(c.String("server"))
	if err != nil {
		host, port = c.String("server"), ""
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			return nil, c.Errorf("server", "server must be host or host:port, e.g. \"smtp.example.com:587\"")
		}
		host = strings.Trim(host, "[]")
	}
	if host == "" || strings.ContainsAny(host, " /\r\n") {
		return nil, c.Errorf("server", "server must be host or host:port, e.g. \"smtp.example.com:587\"")
	}
	if port == "" {
		port = map[string]string{TLSStartTLS: "587", TLSImplicit: "465", TLSNone: "25"}[s.tlsMode]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, c.Errorf("server", "the port %q is not a number between 1 and 65535", port)
	}
	s.host, s.addr = host, net.JoinHostPort(host, port)
	if s.tlsMode == TLSNone && s.username != "" && !isLoopback(host) {
		return nil, c.Errorf("tls", "tls = \"none\" would send the SMTP password in clear text to %s; use \"starttls\" or \"implicit\"", host)
	}
	if s.username != "" && s.password == "" {
		return nil, c.Errorf("password", "a username is set but the password is empty; set password = env(\"SMTP_PASSWORD\")")
	}
	if s.caFile != "" && s.tlsMode == TLSNone {
		return nil, c.Errorf("ca_file", "ca_file has no effect with tls = \"none\"")
	}
	if s.helloName != "" && !isHostname(s.helloName) {
		return nil, c.Errorf("hello_name", "hello_name must be a host name such as \"tda.example.com\"")
	}
	if s.timeout <= 0 {
		return nil, c.Errorf("timeout", "timeout must be positive")
	}

	from, err := mail.ParseAddress(c.String("from"))
	if err != nil || !validAddress(from) {
		return nil, c.Errorf("from", "from is not a mail address (%v); write e.g. \"tda <tda@example.com>\"", errText(err))
	}
	var to []*mail.Address
	for _, t := range c.StringList("to") {
		a, err := mail.ParseAddress(t)
		if err != nil || !validAddress(a) {
			return nil, c.Errorf("to", "%q is not a mail address (%v)", t, errText(err))
		}
		to = append(to, a)
	}
	if len(to) == 0 {
		return nil, c.Errorf("to", "to needs at least one recipient")
	}
	if n := c.Int("excerpt_lines"); n < 1 || n > 1000 {
		return nil, c.Errorf("excerpt_lines", "excerpt_lines must be between 1 and 1000")
	}
	if n := c.Int("max_alerts"); n < 1 || n > 1000 {
		return nil, c.Errorf("max_alerts", "max_alerts must be between 1 and 1000")
	}
	panel := c.String("panel_url")
	if panel != "" {
		if err := alerttext.CheckPanelURL(panel); err != nil {
			return nil, c.Errorf("panel_url", "%v", err)
		}
	}
	s.format = Format{From: from, To: to, SubjectPrefix: headerText(c.String("subject_prefix")),
		PanelURL: panel, ExcerptLines: int(c.Int("excerpt_lines")), MaxAlerts: int(c.Int("max_alerts"))}
	return s, nil
}

func errText(err error) string {
	if err == nil {
		return "it holds characters SMTP cannot carry"
	}
	return err.Error()
}

// Start loads the CA file and settles the EHLO name.
func (s *Sink) Start(context.Context) error {
	if s.tlsMode != TLSNone {
		s.tlsConfig = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
		if s.caFile != "" {
			pem, err := os.ReadFile(s.caFile)
			if err != nil {
				return fmt.Errorf("read ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("ca_file %s holds no PEM certificate", s.caFile)
			}
			s.tlsConfig.RootCAs = pool
		}
	}
	if s.helloName == "" {
		s.helloName = "localhost"
		if h, err := os.Hostname(); err == nil && isHostname(h) {
			s.helloName = h
		}
	}
	return nil
}

// Write mails the batch's alerts as one message.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	if s.helloName == "" {
		if err := s.Start(ctx); err != nil {
			return sdk.Permanent(err)
		}
	}
	alerts := alerttext.Alerts(b.Events)
	if len(alerts) == 0 {
		return nil
	}
	msg, err := Compose(alerts, s.format, s.now())
	if err != nil {
		return sdk.Permanent(fmt.Errorf("compose the message: %w", err))
	}
	err = s.send(ctx, msg)
	switch {
	case err == nil:
		s.log.Debug("mailed alerts", "alerts", len(alerts), "recipients", len(s.format.To))
	case sdk.IsPermanent(err):
		s.log.Error("the mail cannot be delivered; fix the configuration or the server", "server", s.addr, "error", err, "alerts", len(alerts))
	default:
		s.log.Warn("mail delivery failed; the agent will retry", "server", s.addr, "error", err, "alerts", len(alerts))
	}
	return err
}

// send runs one SMTP transaction. Recipients refused with 5xx are logged and skipped; a 4xx
// for any recipient abandons the transaction before DATA, so a retry cannot mail anyone twice.
func (s *Sink) send(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	dialer := &net.Dialer{}
	var conn net.Conn
	conn, err := dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.tlsMode == TLSImplicit {
		tc := tls.Client(conn, s.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return s.tlsError(err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return s.smtpError("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.helloName); err != nil {
		return s.smtpError("EHLO", err)
	}
	if s.tlsMode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return sdk.Permanent(fmt.Errorf("%s does not offer STARTTLS; if it expects TLS from the start (usually port 465) set tls = \"implicit\"", s.addr))
		}
		if err := c.StartTLS(s.tlsConfig); err != nil {
			return s.tlsError(err)
		}
	}
	if s.username != "" {
		if err := s.authenticate(c); err != nil {
			return err
		}
	}
	if err := c.Mail(s.format.From.Address); err != nil {
		return s.smtpError("MAIL FROM", err)
	}
	accepted := 0
	var refused []string
	for _, to := range s.format.To {
		err := c.Rcpt(to.Address)
		if err == nil {
			accepted++
			continue
		}
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			refused = append(refused, to.Address+": "+te.Error())
			continue
		}
		_ = c.Reset()
		return s.smtpError("RCPT TO "+to.Address, err)
	}
	if len(refused) > 0 {
		s.log.Error("the server refuses some recipients; fix the to list", "refused", strings.Join(refused, "; "))
	}
	if accepted == 0 {
		_ = c.Reset()
		return sdk.Permanent(fmt.Errorf("%s refused every recipient: %s; fix to", s.addr, strings.Join(refused, "; ")))
	}
	w, err := c.Data()
	if err != nil {
		return s.smtpError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return s.smtpError("message", err)
	}
	if err := w.Close(); err != nil {
		return s.smtpError("end of message", err)
	}
	_ = c.Quit()
	return nil
}

func (s *Sink) authenticate(c *smtp.Client) error {
	ok, params := c.Extension("AUTH")
	if !ok {
		return sdk.Permanent(fmt.Errorf("%s does not offer authentication (AUTH) on this connection; check tls and server", s.addr))
	}
	offered := strings.Fields(strings.ToUpper(params))
	has := func(m string) bool {
		for _, o := range offered {
			if o == m {
				return true
			}
		}
		return false
	}
	mech := strings.ToUpper(s.auth)
	if mech == "AUTO" {
		switch {
		case has("PLAIN"):
			mech = "PLAIN"
		case has("LOGIN"):
			mech = "LOGIN"
		default:
			return sdk.Permanent(fmt.Errorf("%s offers neither PLAIN nor LOGIN authentication (it offers %s)", s.addr, params))
		}
	}
	var a smtp.Auth
	if mech == "PLAIN" {
		a = plainAuth(s.username, s.password, s.host)
	} else {
		a = loginAuth(s.username, s.password, s.host)
	}
	if err := c.Auth(a); err != nil {
		return s.smtpError("AUTH "+mech, err)
	}
	return nil
}

// smtpError classifies a failed step: 5xx replies are permanent, 4xx replies and I/O errors
// are transient.
func (s *Sink) smtpError(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		e := fmt.Errorf("%s: %s replied %d %s", step, s.addr, te.Code, headerText(te.Msg))
		if te.Code >= 500 {
			return sdk.Permanent(fmt.Errorf("%w; %s", e, refusalFix(step)))
		}
		return e
	}
	if errors.Is(err, errInsecureAuth) {
		return sdk.Permanent(fmt.Errorf("%s: %w", step, err))
	}
	return fmt.Errorf("%s with %s: %w", step, s.addr, err)
}

// refusalFix says what to change after a 5xx reply to step.
func refusalFix(step string) string {
	switch {
	case strings.HasPrefix(step, "AUTH"):
		return "check username and password"
	case step == "MAIL FROM":
		return "the server refuses the sender: fix from"
	case strings.HasPrefix(step, "RCPT TO"):
		return "fix to"
	case step == "DATA" || step == "message" || step == "end of message":
		return "the server refuses the message: check its size limit and its policy for from"
	}
	return "check server and tls"
}

// tlsError makes certificate problems permanent: they need the operator (ca_file, server).
func (s *Sink) tlsError(err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	if errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return sdk.Permanent(fmt.Errorf("TLS with %s: the certificate does not verify (%w); set ca_file to the CA that signed it, or fix server", s.addr, err))
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return s.smtpError("STARTTLS", err)
	}
	return fmt.Errorf("TLS with %s: %w", s.addr, err)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
