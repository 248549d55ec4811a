package dpop

import (
	"net/netip"
	"strings"
)

// normalizeURI returns the normal form of an absolute http or https URI
// for comparing htu with the request (RFC 9449 §4.3 point 9), or false if
// s is not one.
//
// The query and the fragment are dropped first: RFC 9449 §4.3 says to
// compare "ignoring any query and fragment parts", so a proof whose htu
// carries them (as clients of early drafts did) is compared without them
// rather than refused.
//
// The rest is normalised as RFC 3986 §6.2.2 and §6.2.3 describe: scheme
// and host lowercased, percent-encodings uppercased and those of
// unreserved characters decoded, dot segments removed, the default port
// (80, 443) and an empty port dropped, an empty path made "/". Nothing
// else is equivalent: "/a/" is not "/a", "%2F" is not "/", ":0443" is not
// ":443".
//
// Userinfo is refused (RFC 9110 §4.2.4: a sender must not generate it in
// an http(s) URI, and a recipient should treat it as an error), and so are
// characters RFC 3986 does not allow, rather than being escaped: a proof
// is signed over the exact string, so there is no reason to be lenient.
func normalizeURI(s string) (string, bool) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", false
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, ok := normalizeAuthority(scheme, authority)
	if !ok {
		return "", false
	}
	path, ok = normalizePath(path)
	if !ok {
		return "", false
	}
	return scheme + "://" + host + path, true
}

// normalizeAuthority returns host[:port] in normal form for scheme.
func normalizeAuthority(scheme, authority string) (string, bool) {
	if strings.IndexByte(authority, '@') >= 0 {
		return "", false
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		// IP-literal: an IPv6 address in brackets. IPvFuture and zone
		// identifiers are refused: no client addresses a gateway so.
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", false
		}
		addr, err := netip.ParseAddr(authority[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", false
		}
		// Lowercase is the normal form; the textual form of the address
		// (zero compression) is compared as sent.
		host = strings.ToLower(authority[:end+1])
		rest := authority[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", false
			}
			port = rest[1:]
		}
	} else {
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			host, port = authority[:i], authority[i+1:]
		}
		var ok bool
		if host, ok = normalizeRegName(host); !ok || host == "" {
			return "", false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", false
		}
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return host, true
	}
	return host + ":" + port, true
}

// normalizeRegName lowercases a reg-name or IPv4 address (RFC 3986
// §3.2.2) and normalises its percent-encodings.
func normalizeRegName(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			d, ok := percentNormal(s, i)
			if !ok {
				return "", false
			}
			if len(d) == 1 { // a decoded unreserved character
				d = strings.ToLower(d)
			}
			b.WriteString(d)
			i += 2
		case isUnreserved(c) || isSubDelim(c):
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// normalizePath normalises the percent-encodings of an absolute path (or
// an empty one, which becomes "/") and removes its dot segments.
func normalizePath(p string) (string, bool) {
	if p == "" {
		return "/", true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			d, ok := percentNormal(p, i)
			if !ok {
				return "", false
			}
			b.WriteString(d)
			i += 2
		case c == '/' || c == ':' || c == '@' || isUnreserved(c) || isSubDelim(c):
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	return removeDotSegments(b.String()), true
}

// percentNormal returns the normal form of the percent-encoding at s[i]
// (RFC 3986 §6.2.2.1 and §6.2.2.2): the character itself when it is
// unreserved, else the triplet with uppercase hex digits.
func percentNormal(s string, i int) (string, bool) {
	if i+2 >= len(s) {
		return "", false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	if !ok1 || !ok2 {
		return "", false
	}
	if c := hi<<4 | lo; isUnreserved(c) {
		return string(rune(c)), true
	}
	return strings.ToUpper(s[i : i+3]), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isUnreserved reports whether c is an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isSubDelim reports whether c is an RFC 3986 §2.2 sub-delimiter.
func isSubDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=", c) >= 0
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p // the common case: nothing to remove
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "") // "/a/." is "/a/"
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "") // "/a/b/.." is "/a/"
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}
