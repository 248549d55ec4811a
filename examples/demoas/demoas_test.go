package demoas_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

const (
	gatewayID     = "gateway"
	gatewaySecret = "gateway-secret"
	agentID       = "agent"
	agentSecret   = "agent-secret"
	audience      = "https://mcp.example.com"
)

func start(t *testing.T, lifetime time.Duration) *demoas.Server {
	t.Helper()
	s, err := demoas.Start(demoas.Config{
		Clients: []demoas.Client{
			{ID: gatewayID, Secret: gatewaySecret},
			{ID: agentID, Secret: agentSecret, Scopes: []string{"mcp:tools", "mcp:admin"}, Audience: []string{audience}},
		},
		TokenLifetime: lifetime,
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// post sends a form; user != "" adds client_secret_basic.
func post(t *testing.T, u, user, pass string, form url.Values, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func token(t *testing.T, s *demoas.Server, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, body := post(t, s.URL+demoas.TokenPath, agentID, agentSecret, form, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d: %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("token: %v", err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") {
		t.Fatalf("token: unexpected response %s", body)
	}
	if strings.Count(tr.AccessToken, ".") == 2 {
		t.Fatalf("token: access token looks like a JWT, want opaque")
	}
	return tr.AccessToken
}

func introspectJSON(t *testing.T, s *demoas.Server, tok string) map[string]any {
	t.Helper()
	resp, body := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("introspect: Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return m
}

func TestIntrospectJSON(t *testing.T) {
	s := start(t, time.Hour)
	before := time.Now().Unix()
	tok := token(t, s, "mcp:tools")

	m := introspectJSON(t, s, tok)
	want := map[string]any{
		"active":    true,
		"sub":       agentID,
		"client_id": agentID,
		"scope":     "mcp:tools",
		"iss":       s.Issuer,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if aud, _ := m["aud"].([]any); len(aud) != 1 || aud[0] != audience {
		t.Errorf("aud = %v, want [%s]", m["aud"], audience)
	}
	iat, _ := m["iat"].(float64)
	exp, _ := m["exp"].(float64)
	if int64(iat) < before-1 || int64(iat) > time.Now().Unix()+1 {
		t.Errorf("iat = %v, want about now", iat)
	}
	if d := int64(exp) - int64(iat); d < 3599 || d > 3601 {
		t.Errorf("exp - iat = %d, want 3600", d)
	}
	if s.Issuer != s.URL || !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("Issuer %q, URL %q", s.Issuer, s.URL)
	}
}

func TestTokenGrants(t *testing.T) {
	s := start(t, time.Hour)

	t.Run("no scope grants all the client's scopes", func(t *testing.T) {
		m := introspectJSON(t, s, token(t, s, ""))
		if m["scope"] != "mcp:tools mcp:admin" {
			t.Errorf("scope = %v", m["scope"])
		}
	})
	t.Run("client_secret_post", func(t *testing.T) {
		form := url.Values{
			"grant_type":    {"client_credentials"},
			"client_id":     {agentID},
			"client_secret": {agentSecret},
			"scope":         {"mcp:tools"},
		}
		resp, body := post(t, s.URL+demoas.TokenPath, "", "", form, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("scope the client may not have", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"root"}}
		resp, body := post(t, s.URL+demoas.TokenPath, agentID, agentSecret, form, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_scope") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("audience the client may not have", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "audience": {"https://other.example.com"}}
		resp, _ := post(t, s.URL+demoas.TokenPath, agentID, agentSecret, form, "")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}}
		resp, _ := post(t, s.URL+demoas.TokenPath, agentID, "nope", form, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

func fetchJWKS(t *testing.T, s *demoas.Server) jwk.Set {
	t.Helper()
	resp, err := http.Get(s.URL + demoas.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("parse JWKS: %v", err)
	}
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", set.Len())
	}
	key, _ := set.Key(0)
	if key.KeyID() == "" || key.Algorithm() != jwa.RS256 || key.KeyUsage() != "sig" || key.KeyType() != "RSA" {
		t.Fatalf("JWKS key: kid %q alg %v use %q kty %v", key.KeyID(), key.Algorithm(), key.KeyUsage(), key.KeyType())
	}
	if strings.Contains(string(body), `"d"`) {
		t.Fatal("JWKS leaks the private key")
	}
	return set
}

func TestIntrospectJWT(t *testing.T) {
	s := start(t, time.Hour)
	tok := token(t, s, "mcp:tools")
	want := introspectJSON(t, s, tok)
	set := fetchJWKS(t, s)

	resp, body := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "application/jwt")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwt" {
		t.Fatalf("Content-Type %q", ct)
	}

	msg, err := jws.Parse(body)
	if err != nil {
		t.Fatalf("parse JWS: %v", err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	key, _ := set.Key(0)
	if h.Type() != "at+jwt" || h.KeyID() != key.KeyID() || h.Algorithm() != jwa.RS256 {
		t.Fatalf("header typ %q kid %q alg %v", h.Type(), h.KeyID(), h.Algorithm())
	}

	jt, err := jwt.Parse(body, jwt.WithKeySet(set), jwt.WithValidate(true),
		jwt.WithIssuer(s.Issuer), jwt.WithAudience(audience))
	if err != nil {
		t.Fatalf("verify JWT: %v", err)
	}
	if jt.Subject() != agentID {
		t.Errorf("sub = %q", jt.Subject())
	}
	if v, _ := jt.Get("client_id"); v != agentID {
		t.Errorf("client_id = %v", v)
	}
	if v, _ := jt.Get("scope"); v != "mcp:tools" {
		t.Errorf("scope = %v", v)
	}
	if jt.JwtID() == "" {
		t.Error("jti is empty")
	}
	if jt.Expiration().Unix() != int64(want["exp"].(float64)) {
		t.Errorf("exp = %d, want the opaque token's %v", jt.Expiration().Unix(), want["exp"])
	}
	if jt.IssuedAt().Unix() != int64(want["iat"].(float64)) {
		t.Errorf("iat = %d, want %v", jt.IssuedAt().Unix(), want["iat"])
	}

	// A second introspection of the same token yields the same jti.
	_, again := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "application/json, application/jwt;q=0.9")
	jt2, err := jwt.Parse(again, jwt.WithKeySet(set))
	if err != nil {
		t.Fatalf("verify second JWT: %v", err)
	}
	if jt2.JwtID() != jt.JwtID() {
		t.Errorf("jti changed between introspections: %q, %q", jt.JwtID(), jt2.JwtID())
	}
}

func TestInactive(t *testing.T) {
	s := start(t, time.Hour)
	revoked := token(t, s, "mcp:tools")
	if err := s.Revoke(revoked); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	viaEndpoint := token(t, s, "mcp:tools")
	resp, body := post(t, s.URL+demoas.RevocationPath, agentID, agentSecret, url.Values{"token": {viaEndpoint}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke endpoint: status %d: %s", resp.StatusCode, body)
	}
	if err := s.Revoke("garbage"); err == nil {
		t.Error("Revoke(garbage) succeeded")
	}

	for name, tok := range map[string]string{
		"revoked":              revoked,
		"revoked via endpoint": viaEndpoint,
		"garbage":              "not-a-token",
		"tampered":             token(t, s, "mcp:tools") + "x",
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "application/jwt")
			if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
				t.Errorf("jwt mode: status %d body %q, want 204 and no body", resp.StatusCode, body)
			}
			m := introspectJSON(t, s, tok)
			if len(m) != 1 || m["active"] != false {
				t.Errorf("json mode: %v, want only active:false", m)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	s := start(t, time.Second)
	tok := token(t, s, "mcp:tools")
	if m := introspectJSON(t, s, tok); m["active"] != true {
		t.Fatalf("fresh token inactive: %v", m)
	}
	time.Sleep(1100 * time.Millisecond)
	if m := introspectJSON(t, s, tok); m["active"] != false {
		t.Fatalf("expired token active: %v", m)
	}
}

func TestIntrospectionClientAuth(t *testing.T) {
	s := start(t, time.Hour)
	tok := token(t, s, "mcp:tools")
	u := s.URL + demoas.IntrospectionPath
	form := url.Values{"token": {tok}}

	for name, creds := range map[string][2]string{
		"wrong secret":   {gatewayID, "wrong"},
		"unknown client": {"nobody", gatewaySecret},
		"no credentials": {"", ""},
	} {
		t.Run(name, func(t *testing.T) {
			for _, accept := range []string{"", "application/jwt"} {
				resp, body := post(t, u, creds[0], creds[1], form, accept)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("accept %q: status %d, want 401", accept, resp.StatusCode)
				}
				var e map[string]string
				if err := json.Unmarshal(body, &e); err != nil || e["error"] != "invalid_client" {
					t.Fatalf("accept %q: body %q, want an invalid_client JSON error", accept, body)
				}
			}
		})
	}

	t.Run("client_secret_post", func(t *testing.T) {
		f := url.Values{"token": {tok}, "client_id": {gatewayID}, "client_secret": {gatewaySecret}}
		resp, body := post(t, u, "", "", f, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"active":true`) {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("a bearer token is not client authentication", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"token": {"x"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

func TestIntrospectionCounter(t *testing.T) {
	s := start(t, time.Hour)
	tok := token(t, s, "mcp:tools")
	if n := s.IntrospectionCalls(); n != 0 {
		t.Fatalf("calls = %d before any introspection", n)
	}
	u := s.URL + demoas.IntrospectionPath
	post(t, u, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "")
	post(t, u, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "application/jwt")
	post(t, u, gatewayID, gatewaySecret, url.Values{"token": {"garbage"}}, "application/jwt")
	post(t, u, gatewayID, "wrong", url.Values{"token": {tok}}, "")
	if n := s.IntrospectionCalls(); n != 4 {
		t.Fatalf("calls = %d, want 4 (every outcome counts)", n)
	}
	s.ResetIntrospectionCalls()
	if n := s.IntrospectionCalls(); n != 0 {
		t.Fatalf("calls = %d after reset", n)
	}
	// Token requests do not count.
	token(t, s, "")
	if n := s.IntrospectionCalls(); n != 0 {
		t.Fatalf("calls = %d after a token request", n)
	}
}

func getJSON(t *testing.T, u string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, m
}

func TestMetadata(t *testing.T) {
	s := start(t, time.Hour)
	resp, m := getJSON(t, s.URL+demoas.MetadataPath)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	want := map[string]any{
		"issuer":                 s.Issuer,
		"authorization_endpoint": s.URL + demoas.AuthorizationPath,
		"token_endpoint":         s.URL + demoas.TokenPath,
		"introspection_endpoint": s.URL + demoas.IntrospectionPath,
		"revocation_endpoint":    s.URL + demoas.RevocationPath,
		"jwks_uri":               s.URL + demoas.JWKSPath,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	wantLists := map[string]string{
		"grant_types_supported":                         "client_credentials",
		"token_endpoint_auth_methods_supported":         "client_secret_basic client_secret_post",
		"introspection_endpoint_auth_methods_supported": "client_secret_basic client_secret_post",
		"revocation_endpoint_auth_methods_supported":    "client_secret_basic client_secret_post",
		"scopes_supported":                              "mcp:admin mcp:tools",
		"response_types_supported":                      "",
	}
	for k, v := range wantLists {
		list, ok := m[k].([]any)
		if !ok {
			t.Errorf("%s = %v, want a list", k, m[k])
			continue
		}
		var got []string
		for _, x := range list {
			got = append(got, x.(string))
		}
		if strings.Join(got, " ") != v {
			t.Errorf("%s = %v, want [%s]", k, got, v)
		}
	}

	// The OpenID configuration path serves the same document.
	_, oidc := getJSON(t, s.URL+demoas.OpenIDConfigurationPath)
	a, _ := json.Marshal(m)
	b, _ := json.Marshal(oidc)
	if string(a) != string(b) {
		t.Errorf("openid-configuration differs:\n%s\n%s", a, b)
	}

	// The authorization endpoint exists, and refuses.
	resp, e := getJSON(t, s.URL+demoas.AuthorizationPath+"?response_type=code&client_id=agent")
	if resp.StatusCode != http.StatusBadRequest || e["error"] != "unsupported_response_type" {
		t.Errorf("authorize: status %d, %v", resp.StatusCode, e)
	}
}

func TestStartRejectsBadClients(t *testing.T) {
	for name, clients := range map[string][]demoas.Client{
		"empty id":     {{Secret: "x"}},
		"empty secret": {{ID: "a"}},
		"duplicate":    {{ID: "a", Secret: "x"}, {ID: "a", Secret: "y"}},
	} {
		if s, err := demoas.Start(demoas.Config{Clients: clients}); err == nil {
			_ = s.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}
