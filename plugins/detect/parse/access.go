package parse

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// detectAccess maps an access line to an event. The app's route blocks decide first; then
// the built-in heuristics: failed logins (401/403 on a login path), password changes
// (POST/PUT/PATCH on a password path answered 2xx, or a form POST answered 302/303), user
// creation (POST on a users or sign-up path of the app's own user area) and deletion
// (DELETE .../users/<id> 2xx, or a form POST .../users/<id>/delete).
func (p *Parser) detectAccess(h *header, r *result) {
	method := h.method
	status := h.status
	if len(method) == 0 || len(h.path) == 0 {
		return
	}
	path := h.path
	routed := false
	for _, rt := range p.routes {
		if rt.match(method, path, status, r) {
			if rt.Event == NoEvent {
				return
			}
			r.event, routed = rt.Event, true
			break
		}
	}
	if !routed && (method[0] == 'G' || method[0] == 'H' || method[0] == 'O') { // GET, HEAD, OPTIONS
		return
	}
	segs := splitPath(p.segs[:0], path)
	p.segs = segs
	if !routed {
		p.accessHeuristics(method, status, segs, r)
		if r.event == "" {
			return
		}
	}
	admin := false
	for _, s := range segs {
		if string(s) == "admin" {
			admin = true
			break
		}
	}
	r.via = ViaHTTP
	p.setClient(h, r)
	r.set(FieldMethod, string(method))
	r.set(FieldPath, clip(string(path)))
	r.set(FieldStatus, strconv.Itoa(status))
	if admin && r.get(FieldActorRole) == "" {
		r.set(FieldActorRole, "admin")
	}
}

// accessHeuristics recognise the common shapes of login, password, sign-up and deletion
// endpoints.
func (p *Parser) accessHeuristics(method []byte, status int, segs [][]byte, r *result) {
	ok2xx := status >= 200 && status < 300
	redirect := status == 302 || status == 303
	post := string(method) == "POST"
	write := post || string(method) == "PUT" || string(method) == "PATCH"
	n := len(segs)
	switch {
	case (status == 401 || status == 403) && post && p.isLoginPath(segs):
		r.event = LoginFailed
	case write && (ok2xx || post && redirect) && passwordPath(segs):
		r.event = PasswordChanged
	case post && n > 0 && userArea(segs[:n-1]) && (status == 201 && isUsersSeg(segs[n-1]) ||
		(status == 201 || redirect) && isSignupSeg(segs[n-1])):
		r.event = UserCreated
	case string(method) == "DELETE" && ok2xx && n >= 2 && isUsersSeg(segs[n-2]):
		r.event = UserDeleted
		r.set(FieldUserID, clip(string(segs[n-1])))
	case post && (ok2xx || redirect):
		if id, ok := formDeletedUser(segs); ok {
			r.event = UserDeleted
			r.set(FieldUserID, clip(string(id)))
		}
	}
}

// formDeletedUser recognises the deletion endpoints of form apps, which cannot send DELETE:
// .../users/<id>/delete, .../users/delete/<id>, .../delete_user/<id> (also remove, destroy).
func formDeletedUser(segs [][]byte) ([]byte, bool) {
	n := len(segs)
	switch {
	case n >= 3 && isDeleteSeg(segs[n-1]) && isUsersSeg(segs[n-3]):
		return segs[n-2], true
	case n >= 3 && isDeleteSeg(segs[n-2]) && isUsersSeg(segs[n-3]):
		return segs[n-1], true
	case n >= 2 && isDeleteUserSeg(segs[n-2]):
		return segs[n-1], true
	}
	return nil, false
}

func isDeleteSeg(s []byte) bool {
	return string(s) == "delete" || string(s) == "remove" || string(s) == "destroy"
}

func isDeleteUserSeg(s []byte) bool {
	var buf [maxFolded]byte
	switch string(fold(&buf, s)) {
	case "delete_user", "delete-user", "deleteuser", "remove_user", "remove-user",
		"delete_account", "delete-account":
		return true
	}
	return false
}

// userArea reports whether the segments before a users or sign-up segment are those of the
// app's own user area (/register, /auth/register, /api/v1/users, /admin/users), so that
// `POST /nodes/register` or `POST /teams/7/users` are not sign-ups.
func userArea(prefix [][]byte) bool {
	var buf [maxFolded]byte
	for _, s := range prefix {
		switch string(fold(&buf, s)) {
		case "api", "rest", "auth", "admin", "account", "accounts", "user", "users", "identity",
			"iam", "public", "internal", "oauth", "members", "member", "customer", "customers":
			continue
		}
		if len(s) >= 2 && len(s) <= 4 && (s[0] == 'v' || s[0] == 'V') && allDigits(s[1:]) {
			continue // API version: v1, v2
		}
		return false
	}
	return true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// setClient sets the client IP of an access event: the right-most address of the line's
// forwarded chain (with the peer address last) that is not a trusted proxy.
func (p *Parser) setClient(h *header, r *result) {
	chain := h.ip
	if len(chain) == 0 && len(h.peer) == 0 {
		return
	}
	// A logging prefix glued to the first host (`INFO:werkzeug:127.0.0.1`) comes off.
	first := chain
	if c := bytes.IndexByte(chain, ','); c >= 0 {
		first = chain[:c]
	}
	chain = chain[len(first)-len(cleanHost(first)):]
	multi := bytes.IndexByte(chain, ',') >= 0
	if len(h.peer) > 0 {
		if len(chain) > 0 {
			chain = append(append(append([]byte(nil), chain...), ", "...), h.peer...)
			multi = true
		} else {
			chain = h.peer
		}
	}
	if ip := ClientIP(chain, p.trusted); ip != "" {
		r.set(FieldIP, ip)
	}
	if multi {
		r.set(FieldForwardedFor, clip(string(chain)))
	}
}

// splitPath appends the non-empty segments of the path p to segs (at most 33): slices of p.
func splitPath(segs [][]byte, p []byte) [][]byte {
	for len(p) > 0 {
		s := p
		if i := bytes.IndexByte(p, '/'); i >= 0 {
			s, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if len(s) > 0 {
			segs = append(segs, s)
		}
		if len(segs) > 32 {
			break
		}
	}
	return segs
}

func (p *Parser) isLoginPath(segs [][]byte) bool {
	var buf [maxFolded]byte
	for _, s := range segs {
		if p.loginPaths[string(fold(&buf, s))] {
			return true
		}
	}
	return false
}

func passwordPath(segs [][]byte) bool {
	found := false
	var buf [maxFolded]byte
	for _, s := range segs {
		ls := fold(&buf, s)
		// Asking for a reset link changes nothing: /password/forgot, /reset_password_request.
		if bytes.Contains(ls, []byte("forgot")) || bytes.Contains(ls, []byte("request")) ||
			bytes.Contains(ls, []byte("lost")) {
			return false
		}
		if bytes.Contains(ls, []byte("password")) {
			found = true
		}
	}
	return found
}

// maxFolded is the longest path segment fold lowers without allocating.
const maxFolded = 64

// fold returns s in lower case as bytes.ToLower does, in buf when s is ASCII and fits (the
// usual path segment), so that matching a segment allocates nothing; the result is valid
// until the next call with buf.
func fold(buf *[maxFolded]byte, s []byte) []byte {
	if len(s) > len(buf) {
		return bytes.ToLower(s)
	}
	for i, c := range s {
		switch {
		case c >= utf8.RuneSelf:
			return bytes.ToLower(s)
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)]
}

func isUsersSeg(s []byte) bool {
	return string(s) == "users" || string(s) == "accounts" || string(s) == "user"
}

func isSignupSeg(s []byte) bool {
	return string(s) == "signup" || string(s) == "register" || string(s) == "sign-up" || string(s) == "sign_up"
}
