package email

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/sdk"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var (
	textTemplate = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/alerts.txt.tmpl"))
	htmlTemplate = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/alerts.html.tmpl"))
)

// MaxSubject bounds the subject before encoding.
const MaxSubject = 200

// Format holds what shapes an email besides the alerts.
type Format struct {
	From          *mail.Address
	To            []*mail.Address
	SubjectPrefix string
	PanelURL      string
	ExcerptLines  int
	// MaxAlerts bounds the alerts shown in full; the rest are listed by title.
	MaxAlerts int
}

// view is what the templates render. Every string in it is cleaned of control characters;
// the text template prints it as is, the HTML template escapes it.
type view struct {
	Summary string
	Alerts  []alertView
	Others  []string
}

type alertView struct {
	Title, Status, Severity, Color                   string
	Count, Window, Key, Origin, FirstSeen, LastSeen  string
	Fingerprint, Explanation, Suppression, PanelLink string
	Excerpt                                          []string
	ExcerptMore                                      int
}

// Compose builds the complete message (headers and a multipart/alternative body with a text
// and an HTML part) for alerts. Log-derived text reaches headers only through headerText,
// which removes line breaks and control characters, and is then MIME-encoded.
func Compose(alerts []*sdk.Event, f Format, now time.Time) ([]byte, error) {
	if f.ExcerptLines <= 0 {
		f.ExcerptLines = 20
	}
	if f.MaxAlerts <= 0 {
		f.MaxAlerts = 50
	}
	v := buildView(alerts, f)

	var textBody, htmlBody bytes.Buffer
	if err := textTemplate.Execute(&textBody, v); err != nil {
		return nil, fmt.Errorf("render the text part: %w", err)
	}
	if err := htmlTemplate.Execute(&htmlBody, v); err != nil {
		return nil, fmt.Errorf("render the HTML part: %w", err)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct {
		ctype   string
		content []byte
	}{{"text/plain; charset=utf-8", textBody.Bytes()}, {"text/html; charset=utf-8", htmlBody.Bytes()}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write(part.content); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	to := make([]string, len(f.To))
	for i, a := range f.To {
		to[i] = a.String()
	}
	var msg bytes.Buffer
	for _, h := range []struct{ key, value string }{
		{"From", f.From.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", Subject(alerts, f.SubjectPrefix))},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", messageID(alerts, f.From)},
		{"MIME-Version", "1.0"},
		{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()})},
		{"Auto-Submitted", "auto-generated"},
		{"X-Auto-Response-Suppress", "All"},
	} {
		if err := writeHeader(&msg, h.key, h.value); err != nil {
			return nil, err
		}
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// Subject is "[tda] HIGH mass_password_reset (alice)" for one alert and
// "[tda] 3 alerts (2 HIGH, 1 LOW): HIGH mass_password_reset (alice) and 2 more" for several,
// with line breaks and control characters removed.
func Subject(alerts []*sdk.Event, prefix string) string {
	var s string
	switch len(alerts) {
	case 0:
		s = "no alerts"
	case 1:
		s = alerttext.Title(alerts[0].Alert)
	default:
		s = fmt.Sprintf("%d alerts (%s): %s and %d more", len(alerts), alerttext.Tally(alerts),
			alerttext.Title(alerts[0].Alert), len(alerts)-1)
	}
	if prefix != "" {
		s = prefix + " " + s
	}
	return alerttext.Truncate(headerText(s), MaxSubject)
}

// headerText makes text fit for one header line: invalid UTF-8 becomes U+FFFD, and line
// breaks, other control characters (also as the visible symbols alerttext.Clean gives them,
// such as ␍ and ␊) and bidirectional overrides become spaces (runs of spaces collapse to one).
func headerText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' || (r >= '\u2400' && r <= '\u2421') {
			r = ' '
		}
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// writeHeader writes one header field, folded at spaces to keep lines short. It refuses a
// value that still holds a line break: no header can ever be injected through it.
func writeHeader(w *bytes.Buffer, key, value string) error {
	if strings.ContainsAny(value, "\r\n") || strings.ContainsAny(key, "\r\n: ") {
		return fmt.Errorf("header %s holds a line break", key)
	}
	line := textproto.CanonicalMIMEHeaderKey(key) + ":"
	col := len(line)
	w.WriteString(line)
	for i, word := range strings.Split(value, " ") {
		if i > 0 && col+1+len(word) > 76 {
			w.WriteString("\r\n")
			col = 0
		}
		w.WriteByte(' ')
		w.WriteString(word)
		col += 1 + len(word)
	}
	w.WriteString("\r\n")
	return nil
}

// messageID is stable for the same alert records, so a resent message threads with (and can
// be de-duplicated against) the first.
func messageID(alerts []*sdk.Event, from *mail.Address) string {
	h := sha256.New()
	for _, e := range alerts {
		h.Write([]byte(e.Alert.DeliveryKey()))
		h.Write([]byte{0})
	}
	domain := "tda.invalid"
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 {
		if d := from.Address[at+1:]; isHostname(d) {
			domain = d
		}
	}
	return "<tda." + hex.EncodeToString(h.Sum(nil)[:16]) + "@" + domain + ">"
}

func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func buildView(alerts []*sdk.Event, f Format) view {
	v := view{}
	if len(alerts) == 1 {
		v.Summary = alerttext.Title(alerts[0].Alert)
	} else {
		v.Summary = fmt.Sprintf("%d alerts: %s", len(alerts), alerttext.Tally(alerts))
	}
	for i, e := range alerts {
		a := e.Alert
		if i >= f.MaxAlerts {
			v.Others = append(v.Others, alerttext.Truncate(alerttext.Title(a), 500))
			continue
		}
		av := alertView{
			Title:       alerttext.Truncate(alerttext.Title(a), 1000),
			Status:      alerttext.Status(a),
			Severity:    alerttext.Severity(a),
			Color:       color(a),
			Count:       alerttext.Count(a),
			Window:      alerttext.Window(a),
			Key:         alerttext.Truncate(alerttext.Clean(a.Key), 1000),
			Origin:      alerttext.Truncate(alerttext.Origin(e), 1000),
			FirstSeen:   alerttext.Time(a.FirstSeen),
			LastSeen:    alerttext.Time(a.LastSeen),
			Fingerprint: alerttext.Truncate(alerttext.Clean(a.Fingerprint), 200),
			Explanation: alerttext.Truncate(alerttext.Clean(a.Explanation), 10000),
			Suppression: alerttext.Suppression(a),
			PanelLink:   alerttext.PanelLink(f.PanelURL, a),
		}
		if av.Key == "" {
			av.Key = "—"
		}
		for j, l := range a.Excerpt {
			if j >= f.ExcerptLines {
				av.ExcerptMore = len(a.Excerpt) - j
				break
			}
			av.Excerpt = append(av.Excerpt, alerttext.Truncate(alerttext.Clean(l), 2000))
		}
		v.Alerts = append(v.Alerts, av)
	}
	return v
}

func color(a *sdk.Alert) string {
	switch {
	case a.State == sdk.StateResolved:
		return "#2e7d32"
	case a.State == sdk.StateSuppressed:
		return "#757575"
	}
	switch alerttext.SeverityRank(a.Severity) {
	case 0:
		return "#c62828"
	case 1:
		return "#ef6c00"
	case 2:
		return "#f9a825"
	}
	return "#757575"
}

// validAddress reports whether s is one plain address usable in SMTP commands.
func validAddress(a *mail.Address) bool {
	return utf8.ValidString(a.Address) && !strings.ContainsAny(a.Address, "\r\n<> ")
}
