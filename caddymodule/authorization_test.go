package caddymodule

import (
	"net/http"
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
	c := newChallenges(`my realm`, []string{"a", "b"}, "https://h/.well-known/oauth-protected-resource")
	for got, want := range map[string]string{
		c.missing:           `Bearer realm="my realm", scope="a b", resource_metadata="https://h/.well-known/oauth-protected-resource"`,
		c.insufficientScope: `Bearer realm="my realm", error="insufficient_scope", scope="a b", resource_metadata="https://h/.well-known/oauth-protected-resource"`,
	} {
		if got != want {
			t.Errorf("challenge = %s\nwant        %s", got, want)
		}
	}
	if got := newChallenges("", nil, "").missing; got != `Bearer realm="phantom_token"` {
		t.Errorf("a challenge needs a parameter; got %s", got)
	}
	if got := param("x", `a"b\c`); got != `x="a\"b\\c"` {
		t.Errorf("param escaping = %s", got)
	}
}
