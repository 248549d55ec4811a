package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
)

// The handler answers two paths itself, the RFC 9728 document and the
// signer's JWKS. Both are compared in escaped form: the decoded r.URL.Path
// never equals a configured path that holds an escape ("/my%20mcp"), and
// it would let "/my%2520mcp" (which decodes to "/my%20mcp") stand for it,
// and "/a%2Fb" for "/a/b".

// escapedPath returns a configured path (escapes allowed, validated by
// checkMetadataPath) in the form requestPathIs compares: what
// url.URL.EscapedPath gives for a request to it, so "/~x" and "/%7Ex" keep
// meaning what Go's server makes of them.
func escapedPath(p string) string {
	u, err := url.ParseRequestURI(p)
	if err != nil {
		return p
	}
	return u.EscapedPath()
}

// requestPathIs reports whether r is for the local path escaped (built by
// escapedPath or metadataLocation).
func requestPathIs(r *http.Request, escaped string) bool {
	if r.URL.RawPath == "" && strings.IndexByte(escaped, '%') < 0 {
		// The common case, as cheap as comparing the decoded path: Go
		// leaves RawPath empty when the request's path is its default
		// escaping, so EscapedPath would be escape(Path), and that equals
		// an escaped path without '%' only when Path is that very path.
		return r.URL.Path == escaped
	}
	// Escaping never shortens a path, so a longer decoded path cannot
	// match.
	return len(r.URL.Path) <= len(escaped) && r.URL.EscapedPath() == escaped
}
