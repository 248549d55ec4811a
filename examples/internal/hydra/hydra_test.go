package hydra

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

type introspection struct {
	status      int
	contentType string
	cacheCtl    string
	raw         string
	body        map[string]any
}

// introspect posts token to Hydra's admin introspection endpoint the way the
// gateway does: form body, client_secret_basic (which Hydra ignores).
func introspect(t *testing.T, h *Hydra, c Client, token string) introspection {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.IntrospectionURL(),
		strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	in := introspection{
		status:      resp.StatusCode,
		contentType: resp.Header.Get("Content-Type"),
		cacheCtl:    resp.Header.Get("Cache-Control"),
		raw:         string(b),
	}
	if err := json.Unmarshal(b, &in.body); err != nil {
		t.Fatalf("introspection response (status %d, %s) is not JSON: %v: %s", in.status, in.contentType, err, b)
	}
	return in
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("want a JSON array, got %T %v", v, v)
	}
	var out []string
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("want strings, got %T in %v", e, v)
		}
		out = append(out, s)
	}
	return out
}

func TestHydraIntrospection(t *testing.T) {
	h := Start(t)
	t.Logf("hydra: public %s, admin %s, issuer %s", h.PublicURL, h.AdminURL, h.Issuer)

	const resource = "http://127.0.0.1:9/mcp"
	c := Client{
		ID:       "phantom-gateway-test",
		Secret:   "s3cret/with:special&chars", // exercises RFC 6749 §2.3.1 encoding
		Scopes:   []string{"mcp:tools", "mcp:resources"},
		Audience: []string{resource, "http://127.0.0.1:9/other"},
	}
	h.CreateClient(t, c)

	before := time.Now().Add(-5 * time.Second).Unix()
	token := h.ClientCredentialsToken(t, c, "mcp:tools", []string{resource})
	if strings.Count(token, ".") == 2 {
		t.Fatalf("Hydra issued what looks like a JWT; want an opaque token")
	}

	in := introspect(t, h, c, token)
	t.Logf("introspection (active): %s %s, Cache-Control %q: %s", http.StatusText(in.status), in.contentType, in.cacheCtl, in.raw)
	if in.status != http.StatusOK {
		t.Fatalf("introspection status %d: %s", in.status, in.raw)
	}
	if !strings.HasPrefix(strings.ToLower(strings.ReplaceAll(in.contentType, " ", "")), "application/json") {
		t.Errorf("Content-Type = %q, want application/json", in.contentType)
	}
	if !strings.Contains(in.cacheCtl, "no-store") {
		t.Errorf("Cache-Control = %q, want no-store", in.cacheCtl)
	}
	b := in.body
	if b["active"] != true {
		t.Fatalf("active = %v, want true: %s", b["active"], in.raw)
	}
	if got := strs(t, b["aud"]); !slices.Equal(got, []string{resource}) {
		t.Errorf("aud = %q, want [%q]", got, resource)
	}
	if b["scope"] != "mcp:tools" {
		t.Errorf("scope = %v, want mcp:tools", b["scope"])
	}
	if b["client_id"] != c.ID {
		t.Errorf("client_id = %v, want %s", b["client_id"], c.ID)
	}
	if b["sub"] != c.ID {
		t.Errorf("sub = %v, want %s (client_credentials: sub is the client)", b["sub"], c.ID)
	}
	if b["iss"] != h.Issuer {
		t.Errorf("iss = %v, want %s", b["iss"], h.Issuer)
	}
	if tt, _ := b["token_type"].(string); !strings.EqualFold(tt, "bearer") {
		t.Errorf("token_type = %v, want Bearer", b["token_type"])
	}
	exp, _ := b["exp"].(float64)
	iat, _ := b["iat"].(float64)
	now := time.Now().Unix()
	if int64(iat) < before || int64(iat) > now+5 {
		t.Errorf("iat = %v, want about now (%d)", b["iat"], now)
	}
	if int64(exp) <= now || int64(exp) > now+3600+5 {
		t.Errorf("exp = %v, want in the next hour (default TTL_ACCESS_TOKEN 1h); now %d", b["exp"], now)
	}

	// Several audiences and scopes in one token.
	both := h.ClientCredentialsToken(t, c, "mcp:tools mcp:resources", c.Audience)
	in = introspect(t, h, c, both)
	if got := strs(t, in.body["aud"]); !slices.Equal(got, c.Audience) {
		t.Errorf("aud = %q, want %q", got, c.Audience)
	}
	if in.body["scope"] != "mcp:tools mcp:resources" {
		t.Errorf("scope = %v, want \"mcp:tools mcp:resources\"", in.body["scope"])
	}

	// Revocation (RFC 7009) makes the token inactive at once.
	h.Revoke(t, c, token)
	in = introspect(t, h, c, token)
	if in.status != http.StatusOK || in.body["active"] != false {
		t.Errorf("after revocation: status %d, %s; want 200 {\"active\":false}", in.status, in.raw)
	}
	if len(in.body) != 1 {
		t.Errorf("an inactive response should carry only active: %s", in.raw)
	}
	// ...and only that token.
	if in = introspect(t, h, c, both); in.body["active"] != true {
		t.Errorf("revoking one token deactivated another: %s", in.raw)
	}

	// A token Hydra never issued.
	in = introspect(t, h, c, "ory_at_garbage.garbage")
	t.Logf("introspection (garbage): %s %s, Cache-Control %q: %s", http.StatusText(in.status), in.contentType, in.cacheCtl, in.raw)
	if in.status != http.StatusOK || in.body["active"] != false {
		t.Errorf("garbage token: status %d, %s; want 200 {\"active\":false}", in.status, in.raw)
	}
}

// TestHydraIntrospectionIgnoresCallerAuth documents that Hydra v2's admin
// introspection endpoint does not authenticate its caller: wrong or missing
// credentials still get an answer. A gateway test for "wrong gateway
// credentials → 502" therefore cannot rely on Hydra's introspection.
func TestHydraIntrospectionIgnoresCallerAuth(t *testing.T) {
	h := Start(t)
	c := Client{ID: "client-a", Secret: "secret-a", Scopes: []string{"mcp:tools"}, Audience: []string{"http://127.0.0.1:9/mcp"}}
	h.CreateClient(t, c)
	token := h.ClientCredentialsToken(t, c, "mcp:tools", c.Audience)
	in := introspect(t, h, Client{ID: "nobody", Secret: "wrong-secret"}, token)
	if in.status != http.StatusOK || in.body["active"] != true {
		t.Fatalf("Hydra's introspection now checks caller credentials (status %d: %s); update the docs and tests", in.status, in.raw)
	}
}

// TestHydraTokenErrors checks the errors a gateway test can provoke at Hydra.
func TestHydraTokenErrors(t *testing.T) {
	h := Start(t, "TTL_ACCESS_TOKEN=2s")
	c := Client{ID: "client-b", Secret: "secret-b", Scopes: []string{"mcp:tools"}, Audience: []string{"http://127.0.0.1:9/mcp"}, AuthMethod: "client_secret_post"}
	h.CreateClient(t, c)

	post := func(form url.Values) (int, map[string]any) {
		t.Helper()
		status, body := h.clientPost(t, c, h.TokenURL(), form)
		var m map[string]any
		json.Unmarshal(body, &m)
		return status, m
	}
	if status, m := post(url.Values{"grant_type": {"client_credentials"}, "audience": {"http://127.0.0.1:9/elsewhere"}}); status != http.StatusBadRequest || m["error"] != "invalid_request" {
		t.Errorf("audience not allowed: status %d %v; want 400 invalid_request", status, m)
	}
	if status, m := post(url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:admin"}}); status != http.StatusBadRequest || m["error"] != "invalid_scope" {
		t.Errorf("scope not allowed: status %d %v; want 400 invalid_scope", status, m)
	}
	bad := c
	bad.Secret = "not-the-secret"
	if status, body := h.clientPost(t, bad, h.TokenURL(), url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
		t.Errorf("wrong secret: status %d %s; want 401 invalid_client", status, body)
	}

	// Extra configuration through Start's env: a 2s access-token lifetime.
	token := h.ClientCredentialsToken(t, c, "mcp:tools", c.Audience)
	in := introspect(t, h, c, token)
	exp, _ := in.body["exp"].(float64)
	iat, _ := in.body["iat"].(float64)
	if in.body["active"] != true || exp-iat > 2 {
		t.Fatalf("TTL_ACCESS_TOKEN=2s: %s", in.raw)
	}
	time.Sleep(time.Until(time.Unix(int64(exp)+1, 0)))
	if in = introspect(t, h, c, token); in.body["active"] != false {
		t.Errorf("expired token: %s; want inactive", in.raw)
	}
}
