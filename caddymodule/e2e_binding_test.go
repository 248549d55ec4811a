package caddymodule_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var bindingMetricLine = regexp.MustCompile(`^caddy_phantom_token_sender_constraint_rejections_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$`)

// A sender-constrained token is never accepted as a bearer token: a
// DPoP-bound one (cnf.jkt, or token_type DPoP) presented with "Bearer", and
// a certificate-bound one on a route without mtls_bound (which cannot
// check it), get 401 invalid_token on the miss and on every hit, are never
// forwarded, and are counted as binding_mismatch. Unbound tokens pass.
func TestBoundTokensAreNotBearerTokens(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := defaultSite + "\n\thandle /metrics {\n\t\tmetrics\n\t}\n"
	site = strings.Replace(site, "reverse_proxy {UPSTREAM}", "route /mcp* {\n\t\treverse_proxy {UPSTREAM}\n\t}", 1)
	site = strings.Replace(site, "\tphantom_token {", "\tphantom_token /mcp* {", 1)
	g := startCaddy(t, as, up, site)
	as.active(t, "bound-jkt", map[string]any{"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	as.active(t, "bound-type", map[string]any{"token_type": "DPoP"})
	as.active(t, "bound-x5t", map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}})
	as.active(t, "unbound", map[string]any{"token_type": "Bearer", "cnf": map[string]any{"jwk": map[string]any{"kty": "EC"}}})

	before, _ := readMetric(t, g, bindingMetricLine, "binding_mismatch")
	for _, tok := range []string{"bound-jkt", "bound-type", "bound-x5t"} {
		for range 2 { // the miss, then a hit
			n := up.count()
			resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer "+tok)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s as Bearer: status %d, want 401", tok, resp.StatusCode)
			}
			c := resp.Header.Get("WWW-Authenticate")
			if !regexp.MustCompile(`^Bearer .*error="invalid_token"`).MatchString(c) {
				t.Errorf("%s: challenge %q, want Bearer invalid_token", tok, c)
			}
			if up.count() != n {
				t.Fatalf("%s was forwarded", tok)
			}
		}
	}
	if got, _ := readMetric(t, g, bindingMetricLine, "binding_mismatch"); got-before != 6 {
		t.Errorf("binding_mismatch rejections: +%v, want +6", got-before)
	}
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer unbound"); resp.StatusCode != http.StatusOK {
		t.Errorf("an unbound token (cnf without jkt or x5t#S256): status %d, want 200", resp.StatusCode)
	}
	if as.calls.Load() != 4 {
		t.Errorf("AS calls %d, want 4 (one per token: the binding is cached with the entry)", as.calls.Load())
	}
}
