package caddymodule

import (
	"net/http"
	"net/url"
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
	// Escaping never shortens a path, so a longer decoded path cannot
	// match; EscapedPath does not allocate for a path that needs no
	// escaping, the common case.
	return len(r.URL.Path) <= len(escaped) && r.URL.EscapedPath() == escaped
}
