package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// Roles of a token.
const (
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// Token is one credential from the http block.
type Token struct {
	// Name identifies the holder ("alice", "wallboard"); it is the actor of what the token does.
	Name string
	Role string
	// Secret is the token's value.
	Secret string
	// Shared tokens are held by several people: each mutating call must name the person (by).
	Shared bool
}

// principal is who a request is from.
type principal struct {
	name   string
	role   string
	shared bool
	// via is how the request was authenticated: "token NAME", "session NAME", "socket".
	via string
	// session is set for browser sessions (cookie), which need the CSRF header on mutations.
	session *session
}

// Cookie and header names of browser sessions.
const (
	SessionCookie = "tda_session"
	CSRFHeader    = "X-CSRF-Token"
)

// matchToken finds the token whose secret equals given. Every token is compared, in constant
// time over digests of equal length, so neither the position of a match nor the length of a
// secret shows in the timing.
func matchToken(tokens []Token, given string) (Token, bool) {
	g := sha256.Sum256([]byte(given))
	var found Token
	ok := 0
	for _, t := range tokens {
		d := sha256.Sum256([]byte(t.Secret))
		if subtle.ConstantTimeCompare(g[:], d[:]) == 1 {
			found = t
			ok = 1
		}
	}
	return found, ok == 1 && given != ""
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// sameOrigin reports whether a browser request comes from the panel's own origin: the Origin
// header (or, without it, the Referer) must name the host the request was sent to, and
// Sec-Fetch-Site, when the browser sends it, must not say cross-site.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		return true // not a browser, or a browser that sends neither (same-origin GET navigation)
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return u.Host == r.Host
}
