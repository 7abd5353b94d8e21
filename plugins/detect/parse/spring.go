package parse

import (
	"bytes"
)

// detectSpringSecurity: `Authentication event AuthenticationFailureBadCredentialsEvent: alice;
// details: WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null]; ...`.
func detectSpringSecurity(msg []byte, r *result) {
	r.event, r.via = LoginFailed, ViaSecurity
	rest := msg[len("Authentication event "):]
	if c := bytes.Index(rest, []byte(": ")); c >= 0 {
		r.set("failure", clip(string(rest[:c])))
		user := rest[c+2:]
		if sc := bytes.Index(user, []byte("; details")); sc >= 0 {
			user = user[:sc]
		} else if sc := bytes.IndexByte(user, ';'); sc >= 0 {
			user = user[:sc]
		}
		r.set(FieldUsername, clip(string(bytes.TrimSpace(user))))
	}
	if i := bytes.Index(msg, []byte("RemoteIpAddress=")); i >= 0 {
		ip := msg[i+len("RemoteIpAddress="):]
		if e := bytes.IndexAny(ip, ",]; "); e >= 0 {
			ip = ip[:e]
		}
		r.set(FieldIP, clip(string(ip)))
	}
}
