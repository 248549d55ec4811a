package echo_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/echo"
)

func get(t *testing.T, h http.Handler, auth string) echo.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/mcp?x=1", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("X-Secret", "value")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var resp echo.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestJWT(t *testing.T) {
	h := echo.NewHandler()
	enc := base64.RawURLEncoding.EncodeToString
	jwt := enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"sub":"agent","scope":"mcp:tools"}`)) + ".c2ln"

	resp := get(t, h, "Bearer "+jwt)
	if resp.AuthorizationScheme != "Bearer" || resp.SawOpaqueToken {
		t.Fatalf("scheme %q, saw opaque %v", resp.AuthorizationScheme, resp.SawOpaqueToken)
	}
	if resp.JWTClaims["sub"] != "agent" || resp.JWTClaims["scope"] != "mcp:tools" {
		t.Fatalf("claims %v", resp.JWTClaims)
	}
	if resp.Method != http.MethodGet || resp.Path != "/mcp" {
		t.Fatalf("method %q path %q", resp.Method, resp.Path)
	}
	if len(resp.Headers) != 2 || resp.Headers[0] != "Authorization" || resp.Headers[1] != "X-Secret" {
		t.Fatalf("headers %v", resp.Headers)
	}
	if got := h.LastAuthorization(); got != "Bearer "+jwt {
		t.Fatalf("LastAuthorization %q", got)
	}
	last, ok := h.Last()
	if !ok || last.URL != "/mcp?x=1" || last.Header.Get("X-Secret") != "value" {
		t.Fatalf("Last %+v", last)
	}
}

func TestOpaqueAndNone(t *testing.T) {
	h := echo.NewHandler()
	if _, ok := h.Last(); ok || h.LastAuthorization() != "" || h.Count() != 0 {
		t.Fatal("fresh handler has a last request")
	}
	if resp := get(t, h, "Bearer ory_at_abc.def"); !resp.SawOpaqueToken || resp.JWTClaims != nil {
		t.Fatalf("opaque: %+v", resp)
	}
	if resp := get(t, h, "Bearer a.bm90LWpzb24.c"); !resp.SawOpaqueToken {
		t.Fatalf("three segments, payload not JSON: %+v", resp)
	}
	if resp := get(t, h, ""); resp.AuthorizationScheme != "" || resp.SawOpaqueToken {
		t.Fatalf("none: %+v", resp)
	}
	if h.Count() != 3 {
		t.Fatalf("Count %d", h.Count())
	}
}
