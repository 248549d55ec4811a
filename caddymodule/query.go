package caddymodule

import (
	"net/http"
	"strings"
)

// accessTokenKey is the query parameter RFC 6750 §2.3 allows for a bearer
// token. The gateway never reads it (OAuth 2.1 §5.1) and must not let it
// travel upstream either.
const accessTokenKey = "access_token"

// stripAccessTokenQuery removes every pair that names access_token (see
// namesAccessToken) from a request about to be forwarded, in both
// r.URL.RawQuery (what the reverse proxy sends) and r.RequestURI (what logs
// and placeholders show). Everything else stays byte for byte: re-encoding
// would reorder pairs, drop the ones Go cannot parse, and change what the
// upstream routes or signs on.
func stripAccessTokenQuery(r *http.Request) {
	raw := r.URL.RawQuery
	stripped, ok := withoutAccessToken(raw)
	if ok {
		r.URL.RawQuery = stripped
	}
	// RequestURI holds its own copy of the query (usually the same text);
	// its path part stays as the client sent it.
	i := strings.IndexByte(r.RequestURI, '?')
	if i < 0 {
		return
	}
	q := r.RequestURI[i+1:]
	if q != raw {
		q, ok = withoutAccessToken(q)
	} else {
		q = stripped
	}
	if ok {
		if q == "" {
			r.RequestURI = r.RequestURI[:i]
		} else {
			r.RequestURI = r.RequestURI[:i+1] + q
		}
	}
}

// withoutAccessToken drops from a raw query every pair that names
// access_token and reports whether it dropped any; when it did not, it has
// not allocated.
//
// Both '&' and ';' separate pairs: Go (since 1.17) splits on '&' only, but
// other frameworks still split on ';' too, and for them "a=1;access_token=X"
// carries a token. Each kept pair keeps the separator that preceded it,
// except the first one written, so empty pairs and the kind of separator
// survive.
func withoutAccessToken(raw string) (string, bool) {
	if strings.IndexByte(raw, '%') < 0 && !containsFoldASCII(raw, accessTokenKey) {
		// No key here can decode to access_token: the common case, kept
		// to two scans of the query.
		return raw, false
	}
	var b []byte
	dropped, first := false, true
	for start := 0; start <= len(raw); {
		end := start
		for end < len(raw) && raw[end] != '&' && raw[end] != ';' {
			end++
		}
		pair := raw[start:end]
		switch {
		case namesAccessToken(pair):
			if !dropped {
				b = make([]byte, 0, len(raw))
				if start > 0 {
					b = append(b, raw[:start-1]...)
					first = false
				}
				dropped = true
			}
		case dropped:
			if !first {
				b = append(b, raw[start-1])
			}
			b = append(b, pair...)
			first = false
		}
		start = end + 1
	}
	if !dropped {
		return raw, false
	}
	return string(b), true
}

// namesAccessToken reports whether a raw key=value pair's key, decoded as
// url.QueryUnescape would ('+' is a space), is access_token in any ASCII
// case, or that name followed by the "[…]" suffix with which PHP, Rack and
// the Node qs package read the pair as access_token all the same.
//
// It decodes only as far as the decision needs, without allocating. A bad
// escape before that point keeps the pair: Go's parser drops such a pair,
// and parsers that tolerate it keep the '%' in the key, so it cannot name
// access_token for either. After "access_token[" nothing matters: those
// parsers read the pair as the token whatever follows.
func namesAccessToken(pair string) bool {
	key, _, _ := strings.Cut(pair, "=")
	n := 0 // bytes of the decoded key compared so far
	for i := 0; i < len(key); i, n = i+1, n+1 {
		c := key[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(key) || !isHex(key[i+1]) || !isHex(key[i+2]) {
				return false
			}
			c = unhex(key[i+1])<<4 | unhex(key[i+2])
			i += 2
		}
		if n == len(accessTokenKey) {
			return c == '['
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != accessTokenKey[n] {
			return false
		}
	}
	return n == len(accessTokenKey)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// containsFoldASCII reports whether s contains lower (which must be
// lowercase ASCII) in any ASCII case, without allocating. Only ASCII
// letters fold, as in a query parser: strings.EqualFold would also take
// the Kelvin sign for a 'k'.
func containsFoldASCII(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		// c|0x20 maps exactly 'A' and 'a' (and their peers for any
		// letter) to the lowercase letter.
		if s[i]|0x20 == lower[0] && equalFoldASCII(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}
