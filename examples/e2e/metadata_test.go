package e2e

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// wantMetadataHeaders checks the document's media type and caching headers.
func wantMetadataHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
	}
	cc := map[string]string{}
	for _, d := range strings.Split(resp.Header.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		cc[strings.ToLower(name)] = value
	}
	if _, ok := cc["public"]; !ok {
		t.Errorf("Cache-Control = %q, want public", resp.Header.Get("Cache-Control"))
	}
	if age, err := strconv.Atoi(cc["max-age"]); err != nil || age <= 0 {
		t.Errorf("Cache-Control = %q, want a positive max-age", resp.Header.Get("Cache-Control"))
	}
	for _, forbidden := range []string{"no-store", "no-cache", "private"} {
		if _, ok := cc[forbidden]; ok {
			t.Errorf("Cache-Control = %q, must not contain %s", resp.Header.Get("Cache-Control"), forbidden)
		}
	}
}

// TestProtectedResourceMetadataDocument: GET of the RFC 9728 path derived
// from the resource serves, without a token, exactly the configured members,
// as public, cacheable JSON; HEAD gets the same headers and no body.
func TestProtectedResourceMetadataDocument(t *testing.T) {
	s := startStack(t)

	resp, body := s.do(t, http.MethodGet, s.metadataURL, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET metadata: status %d, want 200", resp.StatusCode)
	}
	wantMetadataHeaders(t, resp)
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("metadata is not a JSON object: %v\n%s", err, body)
	}
	want := map[string]any{
		"resource":              s.resource,
		"authorization_servers": []any{s.as.Issuer},
		// The default: required_scopes, then the rules' scopes; not the
		// broad scope that appears only in scope_implies.
		"scopes_supported":         []any{scopeTools, scopeWrite},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            resourceName,
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("metadata document:\n got %s\nwant %s", body, mustJSON(t, want))
	}

	resp, headBody := s.do(t, http.MethodHead, s.metadataURL, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD metadata: status %d, want 200", resp.StatusCode)
	}
	wantMetadataHeaders(t, resp)
	if len(headBody) != 0 {
		t.Errorf("HEAD metadata returned a %d-byte body", len(headBody))
	}

	s.wantIntrospections(t, 0)
	if n := s.upstream.Count(); n != 0 {
		t.Errorf("%d metadata requests reached the MCP server", n)
	}
}

// TestProtectedResourceMetadataRejectsOtherMethods: only GET and HEAD are
// served at the metadata path; other methods get 405 and are not proxied.
func TestProtectedResourceMetadataRejectsOtherMethods(t *testing.T) {
	s := startStack(t)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		resp, _ := s.do(t, method, s.metadataURL, "")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s metadata: status %d, want 405", method, resp.StatusCode)
		}
	}
	if n := s.upstream.Count(); n != 0 {
		t.Errorf("%d metadata requests reached the MCP server", n)
	}
}

// TestProtectedResourceMetadataIgnoresSpoofedHost: resource comes from the
// config, byte for byte; a forged Host, X-Forwarded-Host/-Proto or Forwarded
// header changes neither the document nor the challenge's metadata URL.
func TestProtectedResourceMetadataIgnoresSpoofedHost(t *testing.T) {
	s := startStack(t)
	_, plain := s.do(t, http.MethodGet, s.metadataURL, "")
	port := strings.TrimPrefix(s.gatewayURL, "http://127.0.0.1:")

	spoofs := map[string][]string{
		"X-Forwarded-Host":  {"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https"},
		"Forwarded":         {"Forwarded", `host="evil.example";proto=https`},
		"Host evil.example": {"Host", "evil.example"},
		"Host localhost":    {"Host", "localhost:" + port},
	}
	for name, headers := range spoofs {
		t.Run(name, func(t *testing.T) {
			resp, body := s.do(t, http.MethodGet, s.metadataURL, "", headers...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if !bytes.Equal(body, plain) {
				t.Errorf("document changed:\n got %s\nwant %s", body, plain)
			}
			var doc struct {
				Resource string `json:"resource"`
			}
			if err := json.Unmarshal(body, &doc); err != nil || doc.Resource != s.resource {
				t.Errorf("resource = %q (err %v), want %q", doc.Resource, err, s.resource)
			}

			resp, _ = s.postMCP(t, initializeMessage, headers...)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("POST /mcp without a token: status %d, want 401", resp.StatusCode)
			}
			bearerChallenge(t, resp).wantParam(t, "resource_metadata", s.metadataURL)
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
