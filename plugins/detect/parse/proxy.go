package parse

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// FieldForwardedFor holds the X-Forwarded-For chain an access line logged (with the peer
// address appended when the line has both), when it names more than one address.
const FieldForwardedFor = "forwarded_for"

// maxChainHops bounds how many addresses of a forwarded chain are looked at.
const maxChainHops = 32

// ParseTrustedProxies parses CIDRs (or single addresses) of proxies whose forwarding entries
// are trusted. The error names the entry and says what is expected.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR: write e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR: write e.g. \"10.0.0.0/8\" or \"192.0.2.10\"", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ParseHost reads one entry of a forwarding chain: an address, an address with a port
// (`192.0.2.1:8080`, `[2001:db8::1]:443`) or a bracketed IPv6 address. ok is false for
// anything else (`unknown`, obfuscated identifiers, `-`).
func ParseHost(b []byte) (netip.Addr, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		e := bytes.IndexByte(b, ']')
		if e < 0 {
			return netip.Addr{}, false
		}
		b = b[1:e]
	} else if c := bytes.IndexByte(b, ':'); c >= 0 && c == bytes.LastIndexByte(b, ':') {
		b = b[:c] // IPv4 with a port: exactly one colon
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// ClientIP picks the client address from a forwarding chain (`client, proxy1, proxy2`, as
// X-Forwarded-For lists them, the peer address last when the line has it): the right-most
// entry that is not a trusted proxy. Entries left of it could have been written by anyone and
// are never believed. When every entry is trusted the left-most is returned. An entry that is
// not an address (`unknown`) stops the walk and is returned as written, since nothing left of
// it can be trusted either. "-" and empty chains give "".
func ClientIP(chain []byte, trusted []netip.Prefix) string {
	chain = bytes.TrimSpace(chain)
	if len(chain) == 0 || string(chain) == "-" {
		return ""
	}
	rest := chain
	var last []byte
	for hops := 0; len(rest) > 0 && hops < maxChainHops; hops++ {
		var entry []byte
		if c := bytes.LastIndexByte(rest, ','); c >= 0 {
			entry, rest = rest[c+1:], rest[:c]
		} else {
			entry, rest = rest, nil
		}
		entry = bytes.TrimSpace(entry)
		if len(entry) == 0 || string(entry) == "-" {
			continue
		}
		last = entry
		a, ok := ParseHost(entry)
		if !ok {
			return clip(string(entry))
		}
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	if last == nil {
		return ""
	}
	if a, ok := ParseHost(last); ok {
		return a.String()
	}
	return clip(string(last))
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// isChainByte reports whether c may appear in a host field or a forwarding chain: addresses,
// ports, IPv6 brackets, separators.
func isChainByte(c byte) bool {
	return isHexByte(c) || c == '.' || c == ':' || c == ',' || c == ' ' || c == '[' || c == ']' || c == '%' || c == '-'
}
