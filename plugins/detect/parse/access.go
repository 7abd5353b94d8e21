package parse

import (
	"bytes"
	"strconv"
	"strings"
)

// detectAccess maps an access line to an event: failed logins (401/403 on a login path),
// password changes (POST/PUT/PATCH on a password path), user creation (POST .../users 201)
// and deletion (DELETE .../users/<id> 2xx).
func (p *Parser) detectAccess(h *header, r *result) {
	method := h.method
	status := h.status
	if len(method) == 0 || len(h.path) == 0 {
		return
	}
	get := method[0] == 'G' || method[0] == 'H' || method[0] == 'O' // GET, HEAD, OPTIONS
	if get {
		return
	}
	path := h.path
	segs := splitPath(path)
	admin := false
	for _, s := range segs {
		if string(s) == "admin" {
			admin = true
			break
		}
	}
	ok2xx := status >= 200 && status < 300
	write := string(method) == "POST" || string(method) == "PUT" || string(method) == "PATCH"
	switch {
	case (status == 401 || status == 403) && string(method) == "POST" && p.isLoginPath(segs):
		r.event = LoginFailed
	case write && ok2xx && passwordPath(segs):
		r.event = PasswordChanged
	case string(method) == "POST" && len(segs) > 0 && (status == 201 && isUsersSeg(segs[len(segs)-1]) ||
		(status == 201 || status == 302) && isSignupSeg(segs[len(segs)-1])):
		r.event = UserCreated
	case string(method) == "DELETE" && ok2xx && len(segs) >= 2 && isUsersSeg(segs[len(segs)-2]):
		r.event = UserDeleted
		r.set(FieldUserID, clip(string(segs[len(segs)-1])))
	default:
		return
	}
	r.via = ViaHTTP
	r.set(FieldIP, clip(string(h.ip)))
	r.set(FieldMethod, string(method))
	r.set(FieldPath, clip(string(path)))
	r.set(FieldStatus, strconv.Itoa(status))
	if admin {
		r.set(FieldActorRole, "admin")
	}
}

func splitPath(p []byte) [][]byte {
	var segs [][]byte
	for _, s := range bytes.Split(p, []byte("/")) {
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
	for _, s := range segs {
		if p.loginPaths[strings.ToLower(string(s))] {
			return true
		}
	}
	return false
}

func passwordPath(segs [][]byte) bool {
	found := false
	for _, s := range segs {
		ls := bytes.ToLower(s)
		if bytes.Contains(ls, []byte("forgot")) {
			return false
		}
		if bytes.Contains(ls, []byte("password")) {
			found = true
		}
	}
	return found
}

func isUsersSeg(s []byte) bool {
	return string(s) == "users" || string(s) == "accounts" || string(s) == "user"
}

func isSignupSeg(s []byte) bool {
	return string(s) == "signup" || string(s) == "register" || string(s) == "sign-up" || string(s) == "sign_up"
}
