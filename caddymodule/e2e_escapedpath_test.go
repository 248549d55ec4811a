package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// A resource whose path needs percent-encoding has its RFC 9728 document
// at the escaped path it advertises, and so do a metadata_path and the
// signer's jwks_path written with an escape: the request's escaped path is
// what is compared, so an encoded '/' or a doubly encoded space is another
// path.
func TestLocalPathsCompareEscaped(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	const spaced = "https://mcp.example.com/my%20mcp"
	site := strings.NewReplacer(
		"resource "+resource, "resource "+spaced,
		"\t\tas_jwks_uri {AS}/jwks\n", "\t\tintrospection_format json\n\t\tsign {\n\t\t\tissuer https://gw.example.com\n\t\t\tephemeral_key\n\t\t\tjwks_path /keys%20v1/jwks.json\n\t\t}\n",
	).Replace(defaultSite)
	g := startCaddy(t, as, up, site)

	resp, body := g.do(t, http.MethodGet, "/.well-known/oauth-protected-resource/my%20mcp")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"resource":"`+spaced+`"`) {
		t.Errorf("document: status %d, body %s; want 200 with resource %s", resp.StatusCode, body, spaced)
	}
	resp, _ = g.do(t, http.MethodGet, "/mcp")
	wantMD := `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/my%20mcp"`
	if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, wantMD) {
		t.Errorf("challenge %q does not advertise %s", got, wantMD)
	}
	if resp, _ = g.do(t, http.MethodGet, "/keys%20v1/jwks.json"); resp.StatusCode != http.StatusOK {
		t.Errorf("jwks at its escaped path: status %d, want 200", resp.StatusCode)
	}
	for _, other := range []string{"/.well-known/oauth-protected-resource/my%2520mcp", "/keys%2520v1/jwks.json", "/keys%20v1%2Fjwks.json"} {
		if resp, _ = g.do(t, http.MethodGet, other); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401 (not a local path)", other, resp.StatusCode)
		}
	}

	site = strings.Replace(site, "\t\tauthorization_server {AS}\n", "\t\tauthorization_server {AS}\n\t\tmetadata_path /gw%20a/.well-known/oauth-protected-resource\n", 1)
	loadCaddy(t, g, as, up, site)
	if resp, _ = g.do(t, http.MethodGet, "/gw%20a/.well-known/oauth-protected-resource"); resp.StatusCode != http.StatusOK {
		t.Errorf("metadata_path with an escape: status %d, want 200", resp.StatusCode)
	}
	if as.calls.Load() != 0 || up.count() != 0 {
		t.Errorf("AS calls %d, upstream calls %d; want none", as.calls.Load(), up.count())
	}
}
