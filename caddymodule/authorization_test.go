package caddymodule

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

func TestParseAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		token  string
		want   credentials
	}{
		{"no header", nil, "", noCredentials},
		{"empty header", []string{""}, "", noCredentials},
		{"basic scheme", []string{"Basic dXNlcjpwYXNz"}, "", noCredentials},
		{"scheme prefix of another", []string{"Bearerx abc"}, "", noCredentials},
		{"short other scheme", []string{"Bea"}, "", noCredentials},
		{"canonical", []string{"Bearer abc"}, "abc", bearerToken},
		{"mixed case scheme", []string{"bEaReR abc.def~+/="}, "abc.def~+/=", bearerToken},
		{"lower case scheme", []string{"bearer x"}, "x", bearerToken},
		{"many spaces", []string{"Bearer     abc"}, "abc", bearerToken},
		{"padding", []string{"Bearer abc=="}, "abc==", bearerToken},
		{"jwt-like", []string{"Bearer aaa.bbb.ccc"}, "aaa.bbb.ccc", bearerToken},
		{"scheme only", []string{"Bearer"}, "", badRequest},
		{"scheme and spaces", []string{"Bearer   "}, "", badRequest},
		{"space inside token", []string{"Bearer a b"}, "", badRequest},
		{"quoted token", []string{`Bearer "x"`}, "", badRequest},
		{"padding in the middle", []string{"Bearer ab=c"}, "", badRequest},
		{"only padding", []string{"Bearer =="}, "", badRequest},
		{"comma", []string{"Bearer a,b"}, "", badRequest},
		{"tab separator", []string{"Bearer\tabc"}, "", noCredentials},
		{"non-ascii", []string{"Bearer abcé"}, "", badRequest},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", badRequest},
		{"two headers, one basic", []string{"Basic x", "Bearer b"}, "", badRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.values != nil {
				h["Authorization"] = tc.values
			}
			token, got := parseAuthorization(h)
			if got != tc.want || token != tc.token {
				t.Fatalf("parseAuthorization(%q) = (%q, %v), want (%q, %v)", tc.values, token, got, tc.token, tc.want)
			}
		})
	}
}

func TestAudienceMatcher(t *testing.T) {
	m := newAudienceMatcher("https://MCP.example.com/mcp", []string{"api://legacy"})
	for _, tc := range []struct {
		aud  []string
		want bool
	}{
		{[]string{"https://mcp.example.com/mcp"}, true},
		{[]string{"HTTPS://mcp.EXAMPLE.com/mcp"}, true},
		{[]string{"other", "https://mcp.example.com/mcp"}, true},
		{[]string{"https://mcp.example.com/MCP"}, false},
		{[]string{"https://mcp.example.com/mcp/"}, false},
		{[]string{"https://mcp.example.com"}, false},
		{[]string{"http://mcp.example.com/mcp"}, false},
		{[]string{"https://evil.example.com/mcp"}, false},
		{[]string{"api://legacy"}, true},
		{[]string{"API://legacy"}, false},
		{[]string{}, false},
		{nil, false},
	} {
		if got := m.matchesAny(tc.aud); got != tc.want {
			t.Errorf("matchesAny(%q) = %v, want %v", tc.aud, got, tc.want)
		}
	}
	root := newAudienceMatcher("https://h.example", nil)
	if !root.matches("https://h.example/") || !root.matches("https://H.example") {
		t.Error("an empty path must match /")
	}
}

func TestCheckEndpointURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://as.example.com/introspect", true},
		{"http://127.0.0.1:9000/introspect", true},
		{"http://localhost:9000/introspect", true},
		{"http://[::1]:9000/introspect", true},
		{"http://as.example.com/introspect", false},
		{"http://10.0.0.1/introspect", false},
		{"ftp://as.example.com/", false},
		{"as.example.com/introspect", false},
		{"https://user:pass@as.example.com/", false},
		{"https:///path", false},
	} {
		err := introspect.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestMetadataLocation(t *testing.T) {
	for _, tc := range []struct{ resource, path, url string }{
		{"https://mcp.example.com/mcp", "/.well-known/oauth-protected-resource/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://h.example/", "/.well-known/oauth-protected-resource", "https://h.example/.well-known/oauth-protected-resource"},
		{"https://h.example", "/.well-known/oauth-protected-resource", "https://h.example/.well-known/oauth-protected-resource"},
		{"https://h.example:8443/a/b/", "/.well-known/oauth-protected-resource/a/b/", "https://h.example:8443/.well-known/oauth-protected-resource/a/b/"},
		{"http://127.0.0.1:8080/mcp?tenant=1", "/.well-known/oauth-protected-resource/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
	} {
		path, url, err := metadataLocation(tc.resource)
		if err != nil || path != tc.path || url != tc.url {
			t.Errorf("metadataLocation(%q) = %q, %q, %v; want %q, %q", tc.resource, path, url, err, tc.path, tc.url)
		}
	}
}

func TestChallengesEscapeAndOrder(t *testing.T) {
	const md = "https://h/.well-known/oauth-protected-resource"
	c := newChallenges(`my realm`, []string{"a", "b"}, md, nil)
	for _, tc := range []struct {
		got  challenge
		want []string
	}{
		{c.missing, []string{`Bearer realm="my realm", scope="a b", resource_metadata="` + md + `"`}},
		{c.insufficientScope, []string{`Bearer realm="my realm", error="insufficient_scope", scope="a b", resource_metadata="` + md + `"`}},
		{c.invalidDPoPProof, nil},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("challenge = %q\nwant        %q", tc.got, tc.want)
		}
	}
	if got := newChallenges("", nil, "", nil).missing; !slices.Equal(got, challenge{`Bearer realm="phantom_token"`}) {
		t.Errorf("a challenge needs a parameter; got %s", got)
	}
	if got := param("x", `a"b\c`); got != `x="a\"b\\c"` {
		t.Errorf("param escaping = %s", got)
	}
}

// With DPoP the challenges name both schemes, DPoP first with its algs,
// each in its own field; with dpop required only DPoP; the proof and nonce
// errors are DPoP's, beside the plain Bearer challenge.
func TestChallengesWithDPoP(t *testing.T) {
	const md = "https://h/.well-known/oauth-protected-resource"
	c := newChallenges("", []string{"mcp:tools"}, md, &dpopChallenges{algs: "ES256 EdDSA"})
	for _, tc := range []struct {
		got  challenge
		want []string
	}{
		{c.missing, []string{
			`DPoP scope="mcp:tools", algs="ES256 EdDSA", resource_metadata="` + md + `"`,
			`Bearer scope="mcp:tools", resource_metadata="` + md + `"`}},
		{c.invalidToken, []string{
			`DPoP error="invalid_token", error_description="the access token is not valid for this resource", algs="ES256 EdDSA", resource_metadata="` + md + `"`,
			`Bearer error="invalid_token", error_description="the access token is not valid for this resource", resource_metadata="` + md + `"`}},
		{c.invalidDPoPProof, []string{
			`DPoP error="invalid_dpop_proof", error_description="the DPoP proof is not valid for this request", algs="ES256 EdDSA", resource_metadata="` + md + `"`,
			`Bearer scope="mcp:tools", resource_metadata="` + md + `"`}},
		{c.useDPoPNonce, []string{
			`DPoP error="use_dpop_nonce", error_description="the DPoP proof must carry the nonce in the DPoP-Nonce header", algs="ES256 EdDSA", resource_metadata="` + md + `"`,
			`Bearer scope="mcp:tools", resource_metadata="` + md + `"`}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("challenge = %q\nwant        %q", tc.got, tc.want)
		}
		if cap(tc.got) != len(tc.got) {
			t.Errorf("a shared challenge has spare capacity: an append would write into it")
		}
	}
	req := newChallenges("", []string{"mcp:tools"}, md, &dpopChallenges{algs: "ES256", required: true})
	if len(req.missing) != 1 || !strings.HasPrefix(req.missing[0], "DPoP ") || len(req.invalidDPoPProof) != 1 {
		t.Errorf("dpop required: missing %q, proof %q; want DPoP only", req.missing, req.invalidDPoPProof)
	}
}
