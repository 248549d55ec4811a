package caddymodule

import "net/http"

// credentials classifies the Authorization header of a request.
type credentials int

const (
	bearerToken   credentials = iota // a syntactically valid bearer token
	noCredentials                    // no header, or another scheme: 401 without error
	badRequest                       // malformed: 400 invalid_request, the AS is not called
	dpopToken                        // "DPoP <token>" (RFC 9449 §7.1); only parseAuthorizationDPoP says so
)

// parseAuthorization extracts the bearer token per RFC 6750 §2.1. Only the
// header is read: never the body (that would consume it) nor the query.
func parseAuthorization(h http.Header) (string, credentials) {
	return parseScheme(h, "bearer", bearerToken)
}

// parseAuthorizationDPoP is parseAuthorization on a route that accepts
// DPoP too: "DPoP <token>" is dpopToken, with the same token68 syntax
// (RFC 9449 §7.1).
func parseAuthorizationDPoP(h http.Header) (string, credentials) {
	token, cred := parseScheme(h, "bearer", bearerToken)
	if cred == noCredentials {
		token, cred = parseScheme(h, "dpop", dpopToken)
	}
	return token, cred
}

// parseScheme extracts the credentials of one auth scheme (given in lower
// case), returning kind when they are well formed.
func parseScheme(h http.Header, scheme string, kind credentials) (string, credentials) {
	values := h["Authorization"]
	switch len(values) {
	case 0:
		return "", noCredentials
	case 1:
	default:
		return "", badRequest
	}
	v := values[0]
	if v == "" {
		return "", noCredentials
	}
	if len(v) < len(scheme) || !equalFoldASCII(v[:len(scheme)], scheme) {
		return "", noCredentials
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", badRequest // "Bearer" alone: an empty token
	}
	if rest[0] != ' ' {
		return "", noCredentials // "Bearerx…" is another scheme
	}
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	if !isB64Token(rest) {
		return "", badRequest
	}
	return rest, kind
}

// isB64Token reports whether s matches
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && isB64Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isB64Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '+', '/':
		return true
	}
	return false
}

// equalFoldASCII compares ASCII case-insensitively; lower must be lower case.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
