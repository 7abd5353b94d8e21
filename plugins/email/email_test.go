package email_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tda-dev/tda/plugins/email"
	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 29, 10, 15, 29, 769230769, time.UTC)

func alert(rule, key string) sdk.Event {
	return sdk.Event{
		Time: t0.Add(13 * time.Second), Kind: sdk.KindAlert, Source: "file.hosts",
		Origin: "/var/log/flask/app.log",
		Alert: &sdk.Alert{
			Rule: rule, Severity: sdk.SeverityHigh, State: sdk.StateFiring, Key: key,
			Count: 14, Threshold: 10, Window: time.Minute,
			FirstSeen: t0, LastSeen: t0.Add(13 * time.Second),
			Excerpt: []string{
				"[2026-11-29 10:15:29,769] INFO in auth: password_changed user_id=42 actor=alice actor_role=user ip=10.1.2.3",
				"[2026-11-29 10:15:31,002] INFO in auth: password_changed user_id=43 actor=alice actor_role=user ip=10.1.2.3",
			},
			Fingerprint: "3f9a1c0e5b7d2a64",
			Explanation: "Many passwords were changed by non-admin users in a short time: an account " +
				"takeover or a broken reset flow. Check who triggered the resets and lock the accounts involved.",
		},
	}
}

// config returns the HCL for a sink talking to m.
func config(m *mailServer, extra string) string {
	return fmt.Sprintf(`server   = %q
ca_file  = %q
username = "tda@example.com"
password = "s3cret"
from     = "tda alerts <tda@example.com>"
to       = ["oncall@example.com", "Dana DBA <dba@example.com>"]
timeout  = "5s"
%s`, m.Addr, m.CAFile, extra)
}

// parsed is a received message taken apart.
type parsed struct {
	Header      mail.Header
	Subject     string
	Text, HTML  string
	HeaderNames []string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, data)
	}
	var p parsed
	p.Header = msg.Header
	for k := range msg.Header {
		p.HeaderNames = append(p.HeaderNames, k)
	}
	sort.Strings(p.HeaderNames)
	p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", msg.Header.Get("Subject"), err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		if part.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Fatalf("part encoding %q", part.Header.Get("Content-Transfer-Encoding"))
		}
		body, err := io.ReadAll(quotedprintable.NewReader(part))
		if err != nil {
			t.Fatalf("quoted-printable: %v", err)
		}
		switch ct := part.Header.Get("Content-Type"); ct {
		case "text/plain; charset=utf-8":
			p.Text = string(body)
		case "text/html; charset=utf-8":
			p.HTML = string(body)
		default:
			t.Fatalf("unexpected part %q", ct)
		}
	}
	if p.Text == "" || p.HTML == "" {
		t.Fatalf("message lacks a text or an HTML part")
	}
	return p
}

var wantHeaders = []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Auto-Response-Suppress"}

func TestMailsOneMessageWithTextAndHTMLOverStartTLS(t *testing.T) {
	m := newMailServer(t, serverOptions{})
	s := sdktest.NewSink(t, email.Component(), config(m, `panel_url = "https://tda.example.com/alerts/{fingerprint}"`))
	low := alert("auth_failures", "203.0.113.9")
	low.Alert.Severity = sdk.SeverityLow
	if err := s.Write(low, alert("mass_password_reset", "alice")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	got := m.Received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	r := got[0]
	if !r.TLS || r.User != "tda@example.com" || r.From != "tda@example.com" {
		t.Fatalf("transaction TLS=%v user=%q from=%q, want TLS, authenticated, tda@example.com", r.TLS, r.User, r.From)
	}
	if strings.Join(r.To, ",") != "oncall@example.com,dba@example.com" {
		t.Fatalf("recipients %v", r.To)
	}
	p := parse(t, r.Data)
	if strings.Join(p.HeaderNames, ",") != strings.Join(wantHeaders, ",") {
		t.Fatalf("headers %v, want %v", p.HeaderNames, wantHeaders)
	}
	if want := "[tda] 2 alerts (1 HIGH, 1 LOW): HIGH mass_password_reset (alice) and 1 more"; p.Subject != want {
		t.Fatalf("subject %q, want %q", p.Subject, want)
	}
	if _, err := p.Header.Date(); err != nil {
		t.Fatalf("Date: %v", err)
	}
	if id := p.Header.Get("Message-Id"); !strings.HasPrefix(id, "<tda.") || !strings.HasSuffix(id, "@example.com>") {
		t.Fatalf("Message-ID %q", id)
	}
	to, err := p.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[1].Name != "Dana DBA" {
		t.Fatalf("To %v (%v)", to, err)
	}
	for _, want := range []string{"HIGH mass_password_reset (alice)", "Count:       14 (threshold 10)",
		"password_changed user_id=43", "What it means:", "https://tda.example.com/alerts/3f9a1c0e5b7d2a64"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("text part lacks %q", want)
		}
	}
	if !strings.Contains(p.HTML, `<a href="https://tda.example.com/alerts/3f9a1c0e5b7d2a64">`) {
		t.Errorf("HTML part lacks the control panel link")
	}
	// The most severe alert comes first.
	if strings.Index(p.Text, "mass_password_reset") > strings.Index(p.Text, "auth_failures") {
		t.Errorf("HIGH alert is not first")
	}
}

func TestImplicitTLSWithLogin(t *testing.T) {
	m := newMailServer(t, serverOptions{implicitTLS: true})
	m.set(func() { m.mechs = []string{"LOGIN"} })
	s := sdktest.NewSink(t, email.Component(), config(m, "tls = \"implicit\""), sdktest.WithMode(sdktest.Direct))
	if err := s.Write(alert("bulk_deletion", "")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if got := m.Received(); len(got) != 1 || !got[0].TLS || got[0].User != "tda@example.com" {
		t.Fatalf("received %+v", got)
	}
	m.set(func() {
		if strings.Join(m.authUsed, ",") != "LOGIN" {
			t.Errorf("mechanisms used %v, want LOGIN", m.authUsed)
		}
	})
}

func TestPlainRelayWithoutTLSOrAuth(t *testing.T) {
	m := newMailServer(t, serverOptions{noTLS: true})
	s := sdktest.NewSink(t, email.Component(), fmt.Sprintf(`server = %q
tls  = "none"
from = "tda@example.com"
to   = ["oncall@example.com"]`, m.Addr), sdktest.WithMode(sdktest.Direct))
	if err := s.Write(alert("bulk_deletion", "")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if got := m.Received(); len(got) != 1 || got[0].TLS {
		t.Fatalf("received %+v", got)
	}
}

// A log line cannot add or change a header: line breaks and control characters are removed
// before anything reaches a header, and the envelope recipients are only the configured ones.
func TestLogTextCannotInjectHeaders(t *testing.T) {
	m := newMailServer(t, serverOptions{})
	s := sdktest.NewSink(t, email.Component(), config(m, ""), sdktest.WithMode(sdktest.Direct))
	evil := alert("mass_password_reset\r\nBcc: rule@evil.example", "alice\r\nBcc: victim@evil.example\r\nSubject: hi")
	evil.Alert.Severity = "HIGH\nX-Injected: 1"
	evil.Origin = "app\r\n\r\nbody"
	evil.Alert.Excerpt = []string{"password_changed actor=x\r\nBcc: line@evil.example", "<script>alert(1)</script>", "\r\n.\r\nMAIL FROM:<x@evil>"}
	evil.Alert.Explanation = "see <b>this</b>\n\nBcc: expl@evil.example"
	evil.Alert.Fingerprint = "fp\r\nBcc: fp@evil.example"
	if err := s.Write(evil); err != nil {
		t.Fatalf("Write = %v", err)
	}
	got := m.Received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages", len(got))
	}
	if strings.Join(got[0].To, ",") != "oncall@example.com,dba@example.com" {
		t.Fatalf("envelope recipients %v", got[0].To)
	}
	p := parse(t, got[0].Data)
	if strings.Join(p.HeaderNames, ",") != strings.Join(wantHeaders, ",") {
		t.Fatalf("headers %v, want exactly %v", p.HeaderNames, wantHeaders)
	}
	if strings.ContainsAny(p.Subject, "\r\n") {
		t.Fatalf("subject holds a line break: %q", p.Subject)
	}
	if want := "[tda] HIGH X-INJECTED: 1 mass_password_reset Bcc: rule@evil.example (alice Bcc: victim@evil.example Subject: hi)"; p.Subject != want {
		t.Fatalf("subject %q, want %q", p.Subject, want)
	}
	to, _ := p.Header.AddressList("To")
	if len(to) != 2 {
		t.Fatalf("To %v", to)
	}
	if strings.Contains(p.HTML, "<script>") || !strings.Contains(p.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("HTML part does not escape the log line")
	}
	if strings.Contains(p.HTML, "<b>this</b>") {
		t.Fatalf("HTML part does not escape the explanation")
	}
	// In the body, line breaks inside log text show as visible symbols.
	if !strings.Contains(p.Text, "password_changed actor=x␍␊Bcc: line@evil.example") {
		t.Fatalf("text part does not show the embedded line break visibly:\n%s", p.Text)
	}
}

func TestServerAnswersMapToOutcomes(t *testing.T) {
	tempRcpt := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	badRcpt := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	tests := []struct {
		name      string
		rcpt      func(string) error
		data      error
		password  string
		want      string // ok, permanent, transient
		delivered []string
		fix       string // in a permanent error: what to change
	}{
		{name: "accepted", want: "ok", delivered: []string{"oncall@example.com", "dba@example.com"}},
		{name: "one recipient refused", rcpt: func(to string) error {
			if to == "dba@example.com" {
				return badRcpt
			}
			return nil
		}, want: "ok", delivered: []string{"oncall@example.com"}},
		{name: "every recipient refused", rcpt: func(string) error { return badRcpt }, want: "permanent", fix: `no such user"; fix to`},
		{name: "recipient deferred", rcpt: func(to string) error {
			if to == "dba@example.com" {
				return tempRcpt
			}
			return nil
		}, want: "transient"},
		{name: "message refused", data: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}, want: "permanent",
			fix: "content rejected; the server refuses the message: check its size limit and its policy for from"},
		{name: "message deferred", data: &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "mailbox full"}, want: "transient"},
		{name: "wrong password", password: "wrong", want: "permanent", fix: "; check username and password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMailServer(t, serverOptions{})
			m.set(func() { m.rcptErr, m.dataErr = tt.rcpt, tt.data })
			hcl := config(m, "")
			if tt.password != "" {
				hcl = strings.Replace(hcl, `"s3cret"`, fmt.Sprintf("%q", tt.password), 1)
			}
			s := sdktest.NewSink(t, email.Component(), hcl, sdktest.WithMode(sdktest.Direct))
			err := s.Write(alert("bulk_deletion", ""))
			checkOutcome(t, err, tt.want)
			if tt.fix != "" && !strings.Contains(err.Error(), tt.fix) {
				t.Fatalf("error %q does not say %q", err, tt.fix)
			}
			got := m.Received()
			if tt.delivered == nil {
				if len(got) != 0 {
					t.Fatalf("server accepted %d messages, want none", len(got))
				}
				return
			}
			if len(got) != 1 || strings.Join(got[0].To, ",") != strings.Join(tt.delivered, ",") {
				t.Fatalf("received %+v, want one message to %v", got, tt.delivered)
			}
		})
	}
}

func checkOutcome(t *testing.T, err error, want string) {
	t.Helper()
	switch want {
	case "ok":
		if err != nil {
			t.Fatalf("Write = %v, want nil", err)
		}
	case "permanent":
		if !sdk.IsPermanent(err) {
			t.Fatalf("Write = %v, want a permanent error", err)
		}
	case "transient":
		if err == nil || sdk.IsPermanent(err) {
			t.Fatalf("Write = %v, want a transient error", err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %q reveals the password", err)
	}
}

func TestConnectionProblems(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		s := sdktest.NewSink(t, email.Component(), fmt.Sprintf("server = %q\ntls = \"none\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]", addr), sdktest.WithMode(sdktest.Direct))
		checkOutcome(t, s.Write(alert("r", "")), "transient")
	})
	t.Run("silent server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close() // never greets
			}
		}()
		s := sdktest.NewSink(t, email.Component(), fmt.Sprintf("server = %q\ntls = \"none\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\ntimeout = \"300ms\"", l.Addr()), sdktest.WithMode(sdktest.Direct))
		start := time.Now()
		checkOutcome(t, s.Write(alert("r", "")), "transient")
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Write took %v with a 300ms timeout", time.Since(start))
		}
	})
	t.Run("no STARTTLS", func(t *testing.T) {
		m := newMailServer(t, serverOptions{noTLS: true})
		s := sdktest.NewSink(t, email.Component(), config(m, ""), sdktest.WithMode(sdktest.Direct))
		err := s.Write(alert("r", ""))
		checkOutcome(t, err, "permanent")
		if !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("error %q does not name STARTTLS", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		m := newMailServer(t, serverOptions{})
		hcl := strings.Replace(config(m, ""), fmt.Sprintf("ca_file  = %q\n", m.CAFile), "", 1)
		s := sdktest.NewSink(t, email.Component(), hcl, sdktest.WithMode(sdktest.Direct))
		err := s.Write(alert("r", ""))
		checkOutcome(t, err, "permanent")
		if !strings.Contains(err.Error(), "ca_file") {
			t.Fatalf("error %q does not point at ca_file", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	base := "from = \"tda@example.com\"\nto = [\"a@example.com\"]\n"
	tests := []struct{ name, src, want string }{
		{"clear-text password", base + "server = \"smtp.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"", "would send the SMTP password in clear text"},
		{"bad port", base + "server = \"smtp.example.com:99999\"", "the port \"99999\" is not a number between 1 and 65535"},
		{"bad from", "from = \"not an address\"\nto = [\"a@example.com\"]\nserver = \"smtp.example.com\"", "1:8: Invalid from: from is not a mail address"},
		{"bad to", "from = \"a@example.com\"\nto = [\"ok@example.com\", \"x\\r\\nBcc: y@example.com\"]\nserver = \"smtp.example.com\"", "is not a mail address"},
		{"no recipients", "from = \"a@example.com\"\nto = []\nserver = \"smtp.example.com\"", "at least one recipient"},
		{"password missing", base + "server = \"smtp.example.com\"\nusername = \"u\"", "password is empty"},
		{"tls enum", base + "server = \"smtp.example.com\"\ntls = \"ssl\"", "tls must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := strings.Join(sdktest.Validate(t, email.Component(), tt.src), "\n")
			if !strings.Contains(diags, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", diags, tt.want)
			}
		})
	}
	if d := sdktest.Validate(t, email.Component(), base+"server = \"smtp.example.com\""); len(d) != 0 {
		t.Fatalf("valid config reported %v", d)
	}
	c := email.Component()
	if c.Queue != sdk.QueueDurable || len(c.Accepts) != 1 || c.Accepts[0] != sdk.KindAlert {
		t.Fatalf("accepts %v queue %q", c.Accepts, c.Queue)
	}
	for _, name := range []string{"username", "password"} {
		if f, _ := c.Spec.FieldByName(name); !f.Sensitive {
			t.Errorf("%s is not marked sensitive", name)
		}
	}
}

// Golden bodies: what an operator reads for each kind of alert record.
func TestBodiesMatchGolden(t *testing.T) {
	reminder := alert("mass_password_reset", "alice")
	reminder.Alert.Realert, reminder.Alert.Count = 2, 31
	suppressed := alert("bulk_user_creation", "")
	suppressed.Alert.State = sdk.StateSuppressed
	suppressed.Alert.SuppressedBy, suppressed.Alert.OverrideReason = "carol", "partner bulk import"
	resolved := alert("bulk_deletion", "")
	resolved.Alert.State = sdk.StateResolved
	from, _ := mail.ParseAddress("tda <tda@example.com>")
	to, _ := mail.ParseAddress("oncall@example.com")
	f := email.Format{From: from, To: []*mail.Address{to}, SubjectPrefix: "[tda]",
		PanelURL: "https://tda.example.com/alerts/{fingerprint}", ExcerptLines: 20, MaxAlerts: 2}
	for name, events := range map[string][]sdk.Event{
		"reminder": {reminder},
		"batch":    {alert("mass_password_reset", "alice"), suppressed, resolved},
	} {
		t.Run(name, func(t *testing.T) {
			msg, err := email.Compose(alerttext.Alerts(events), f, t0)
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, msg)
			golden(t, filepath.Join("testdata", name+".txt"), "Subject: "+p.Subject+"\n\n"+p.Text)
			golden(t, filepath.Join("testdata", name+".html"), p.HTML)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("%s differs from the message built now:\n%s", path, got)
	}
}

// FuzzCompose feeds arbitrary log-derived text into every alert field: the message must parse
// with exactly the headers tda writes and a subject without line breaks.
func FuzzCompose(f *testing.F) {
	f.Add("mass_password_reset", "alice\r\nBcc: x@evil", "line\r\n.\r\n", "HIGH", "\xff\x00\u202e")
	f.Add("", "", "", "", "")
	f.Add(strings.Repeat("é", 300), strings.Repeat("=?utf-8?q?x?=", 30), strings.Repeat("a", 5000), "LOW", "\t\t")
	from, _ := mail.ParseAddress("tda <tda@example.com>")
	to, _ := mail.ParseAddress("oncall@example.com")
	format := email.Format{From: from, To: []*mail.Address{to}, SubjectPrefix: "[tda]"}
	f.Fuzz(func(t *testing.T, rule, key, line, severity, other string) {
		e := alert(rule, key)
		e.Alert.Severity, e.Alert.Excerpt = severity, []string{line, other}
		e.Alert.Explanation, e.Alert.SuppressedBy, e.Origin = other, other, other
		msg, err := email.Compose(alerttext.Alerts([]sdk.Event{e, e}), format, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(msg, []byte("\r\n")) {
			if len(l) > 998 {
				t.Fatalf("line of %d bytes", len(l))
			}
		}
		p := parse(t, msg)
		if strings.Join(p.HeaderNames, ",") != strings.Join(wantHeaders, ",") {
			t.Fatalf("headers %v", p.HeaderNames)
		}
		if strings.ContainsAny(p.Subject, "\r\n") {
			t.Fatalf("subject %q", p.Subject)
		}
	})
}
