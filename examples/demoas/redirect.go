package demoas

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// redirectKey is the context key of the redirect_uri of the authorization
// request being served.
type redirectKey struct{}

// withRedirectURI records the authorization request's redirect_uri for
// GetClient: fosite matches redirect URIs exactly except for loopback IP
// literals, but native apps (Claude Code, MCP Inspector) listen on
// http://localhost with a port chosen at run time.
func withRedirectURI(ctx context.Context, uri string) context.Context {
	return context.WithValue(ctx, redirectKey{}, uri)
}

// withLoopbackPort returns c, or, when the context's redirect URI differs
// from one of c's registered loopback redirect URIs only by its port, a copy
// of c that also has that redirect URI (RFC 8252 §7.3).
func withLoopbackPort(ctx context.Context, c *client) fosite.Client {
	uri, _ := ctx.Value(redirectKey{}).(string)
	if uri == "" || slices.Contains(c.RedirectURIs, uri) {
		return c
	}
	for _, registered := range c.RedirectURIs {
		if loopbackMatch(uri, registered) {
			dc := *c.DefaultClient
			dc.RedirectURIs = append(slices.Clone(c.RedirectURIs), uri)
			cp := *c
			cp.DefaultClient = &dc
			return &cp
		}
	}
	return c
}

// loopbackMatch reports whether requested and registered are the same http
// loopback redirect URI but for the port.
func loopbackMatch(requested, registered string) bool {
	q, err := url.Parse(requested)
	if err != nil {
		return false
	}
	r, err := url.Parse(registered)
	if err != nil {
		return false
	}
	return q.Scheme == "http" && r.Scheme == "http" &&
		q.User == nil && r.User == nil && q.Fragment == "" &&
		isLoopbackHost(q.Hostname()) &&
		strings.EqualFold(q.Hostname(), r.Hostname()) &&
		q.EscapedPath() == r.EscapedPath() &&
		q.RawQuery == r.RawQuery
}
