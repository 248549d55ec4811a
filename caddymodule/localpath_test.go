package caddymodule

import (
	"net/http"
	"net/url"
	"testing"
)

// A configured local path matches exactly the requests whose escaped path
// is its own, as Go's server parses them.
func TestRequestPathIs(t *testing.T) {
	tests := []struct {
		config, request string
		want            bool
	}{
		{"/.well-known/jwks.json", "/.well-known/jwks.json", true},
		{"/my%20mcp", "/my%20mcp", true},
		{"/my%20mcp", "/my%2520mcp", false},
		{"/a%2Fb", "/a%2Fb", true},
		{"/a%2Fb", "/a/b", false},
		{"/a/b", "/a%2Fb", false},
		{"/caf%C3%A9", "/caf%C3%A9", true},
		{"/café", "/caf%C3%A9", true},
		{"//double", "//double", true},
		{"/x", "/x/", false},
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.request)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestPathIs(&http.Request{URL: u}, escapedPath(tt.config)); got != tt.want {
			t.Errorf("config %q, request %q: %v, want %v", tt.config, tt.request, got, tt.want)
		}
	}
	if err := checkMetadataPath("/bad%zz"); err == nil {
		t.Error("a path with a bad escape was accepted")
	}
}
