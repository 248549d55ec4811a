package caddymodule_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// readmeCORSSnippet returns the Caddyfile lines the README documents for
// browser clients, so that the test checks exactly what operators copy.
func readmeCORSSnippet(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "<!-- cors-snippet -->\n```caddyfile\n")
	if !ok {
		t.Fatal("README.md has no cors-snippet block")
	}
	snippet, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("cors-snippet block is not closed")
	}
	return snippet
}

// The README's CORS snippet answers preflights without a token and lets a
// browser read the challenge of a 401.
func TestReadmeCORSSnippet(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, readmeCORSSnippet(t)+defaultSite)

	resp, _ := g.do(t, http.MethodOptions, "/mcp",
		"Origin", "http://localhost:6274",
		"Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight status = %d, want 204", resp.StatusCode)
	}
	allowHeaders := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "mcp-session-id", "mcp-protocol-version"} {
		if !strings.Contains(allowHeaders, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowHeaders, h)
		}
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("Access-Control-Allow-Methods = %q", resp.Header.Get("Access-Control-Allow-Methods"))
	}

	resp, _ = g.do(t, http.MethodPost, "/mcp", "Origin", "http://localhost:6274")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", resp.StatusCode)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("a browser cannot read the 401 challenge: Allow-Origin %q, Expose-Headers %q",
			resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Expose-Headers"))
	}
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
	if as.calls.Load() != 0 || up.count() != 0 {
		t.Errorf("AS calls %d, upstream calls %d; want none", as.calls.Load(), up.count())
	}
}
