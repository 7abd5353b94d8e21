package parse

import "bytes"

// detectSpringSecurity reads Spring Security's LoggerListener line (msg starts with
// "Authentication event AuthenticationFailure"):
//
//	6.x/5.x: Authentication event AuthenticationFailureBadCredentialsEvent: alice; details: WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null]; exception: Bad credentials
//	4.x:     Authentication event AuthenticationFailureBadCredentialsEvent: alice; details: org.springframework.security.web.authentication.WebAuthenticationDetails@957e: RemoteIpAddress: 203.0.113.9; SessionId: null; exception: Bad credentials
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
	if ip := clientIP(msg); len(ip) > 0 {
		r.set(FieldIP, clip(string(ip)))
	}
}

// detectAuditEvent reads a Spring Boot Actuator audit event as its toString() prints it
// (msg starts with "AuditEvent ["):
//
//	AuditEvent [timestamp=2026-12-05T15:46:28.123Z, principal=bob, type=AUTHENTICATION_FAILURE, data={details=WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null], type=org.springframework.security.authentication.BadCredentialsException, message=Bad credentials}]
func detectAuditEvent(msg []byte, r *result) {
	head := msg
	if d := bytes.Index(head, []byte(", data={")); d >= 0 {
		head = head[:d]
	}
	if !bytes.Contains(head, []byte("type=AUTHENTICATION_FAILURE")) {
		return
	}
	r.event, r.via = LoginFailed, ViaSecurity
	if p := bytes.Index(head, []byte("principal=")); p >= 0 {
		user := head[p+len("principal="):]
		if e := bytes.Index(user, []byte(", type=")); e >= 0 {
			user = user[:e]
		} else if e := bytes.IndexByte(user, ','); e >= 0 {
			user = user[:e]
		}
		r.set(FieldUsername, clip(string(bytes.TrimSpace(user))))
	}
	if len(head) < len(msg) {
		// The exception class in data: `type=org.springframework...BadCredentialsException`.
		data := msg[len(head):]
		if x := bytes.Index(data, []byte(" type=")); x >= 0 {
			cls := data[x+len(" type="):]
			if e := bytes.IndexAny(cls, ",}] "); e >= 0 {
				cls = cls[:e]
			}
			if dot := bytes.LastIndexByte(cls, '.'); dot >= 0 {
				cls = cls[dot+1:]
			}
			r.set("failure", clip(string(cls)))
		}
	}
	if ip := clientIP(msg); len(ip) > 0 {
		r.set(FieldIP, clip(string(ip)))
	}
}

// ipMarkers introduce the client address in the details Spring Security and apps print.
var ipMarkers = [][]byte{[]byte("RemoteIpAddress="), []byte("RemoteIpAddress: "), []byte("remoteAddress="), []byte("remoteAddress: ")}

// clientIP finds the client address in Spring Security details, in any of their forms:
// `RemoteIpAddress=203.0.113.9,` (5.x, 6.x), `RemoteIpAddress: 203.0.113.9;` (4.x and
// earlier), `remoteAddress=203.0.113.9`. A socket address's leading `/` and an IPv4 port are
// dropped. It returns nil when the value is not an address.
func clientIP(msg []byte) []byte {
	for _, m := range ipMarkers {
		i := bytes.Index(msg, m)
		if i < 0 {
			continue
		}
		v := msg[i+len(m):]
		e := 0
		for e < len(v) && isAddrByte(v[e]) {
			e++
		}
		v = bytes.TrimPrefix(v[:e], []byte("/"))
		if c := bytes.IndexByte(v, ':'); c >= 0 && bytes.Count(v, []byte(":")) == 1 && bytes.IndexByte(v[:c], '.') >= 0 {
			v = v[:c] // 203.0.113.9:54321
		}
		if len(v) > 1 {
			return v
		}
	}
	return nil
}

func isAddrByte(c byte) bool {
	return isHexByte(c) || c == '.' || c == ':' || c == '/' || c == '%'
}
