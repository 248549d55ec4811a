package demoas_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

const (
	exchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	typeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// exchange sends a token exchange request as id (client_secret_basic).
func exchange(t *testing.T, s *demoas.Server, id, secret string, form url.Values) (int, map[string]any, string) {
	t.Helper()
	form.Set("grant_type", exchangeGrant)
	resp, body := post(t, s.URL+demoas.TokenPath, id, secret, form, "")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("exchange response %q: %v", body, err)
	}
	return resp.StatusCode, m, string(body)
}

// userTokens logs alice in with scope and returns her opaque access token
// and its introspection JWT (what the gateway forwards to the MCP server).
func userTokens(t *testing.T, s *demoas.Server, clientID, scope string) (opaque, jwtToken string) {
	t.Helper()
	f := newFlow(clientID)
	f.scope = scope
	opaque = loginToken(t, s, f)["access_token"].(string)
	return opaque, introspectJWT(t, s, opaque)
}

// foreignJWT is a JWT with the claims of a good subject token, signed with
// another key (or, for HS256, a shared secret).
func foreignJWT(t *testing.T, issuer string, alg jwa.SignatureAlgorithm) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Issuer(issuer).Subject(userName).Audience([]string{mcpResource}).
		IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Claim("scope", "mcp:tools").Build()
	if err != nil {
		t.Fatal(err)
	}
	var key any = []byte("a shared secret of thirty-two bytes")
	if alg == jwa.RS256 {
		raw, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if key, err = jwk.FromRaw(raw); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// tamper replaces the JWT's payload with one naming another subject.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	payload = []byte(strings.Replace(string(payload), userName, "mallory", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestTokenExchange(t *testing.T) {
	s := startConfig(t, loginConfig())
	clientID := registerPublic(t, s)
	toolsOpaque, toolsJWT := userTokens(t, s, clientID, "mcp:tools")
	_, adminJWT := userTokens(t, s, clientID, "mcp:tools mcp:admin")
	subjectExp := int64(introspectJSON(t, s, toolsOpaque)["exp"].(float64))

	for _, tc := range []struct {
		name   string
		form   url.Values
		post   bool // client_secret_post instead of basic
		scope  string
		expMax int64 // the token's exp must not exceed it; 0: no check
	}{
		{"JWT, resource", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}}, false, "api:read", subjectExp},
		{"JWT, audience", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}, "audience": {apiResource}}, false, "api:read", subjectExp},
		{"JWT, resource and audience", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}, "audience": {apiResource}}, false, "api:read", subjectExp},
		{"JWT, the only target by default", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}}, false, "api:read", subjectExp},
		{"JWT typed as an access token", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeAccess}, "resource": {apiResource}}, false, "api:read", subjectExp},
		{"client_secret_post", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}}, true, "api:read", subjectExp},
		{"admin subject gets both", url.Values{"subject_token": {adminJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}}, false, "api:read api:write", 0},
		{"admin subject, api:write requested", url.Values{"subject_token": {adminJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}, "scope": {"api:write"}}, false, "api:write", 0},
		{"unknown requested scopes are dropped", url.Values{"subject_token": {adminJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}, "scope": {"api:write mcp:tools other"}}, false, "api:write", 0},
		{"opaque access token", url.Values{"subject_token": {toolsOpaque}, "subject_token_type": {typeAccess}, "resource": {apiResource}}, false, "api:read", subjectExp},
		{"requested_token_type access_token", url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}, "requested_token_type": {typeAccess}}, false, "api:read", subjectExp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, secret := mcpServerID, mcpSecret
			if tc.post {
				tc.form.Set("client_id", id)
				tc.form.Set("client_secret", secret)
				id, secret = "", ""
			}
			subjectToken := tc.form.Get("subject_token")
			status, m, body := exchange(t, s, id, secret, tc.form)
			if status != http.StatusOK {
				t.Fatalf("status %d, %v", status, m)
			}
			if strings.Contains(body, subjectToken) {
				t.Fatal("the response echoes the subject token")
			}
			at, _ := m["access_token"].(string)
			exp, _ := m["expires_in"].(float64)
			if at == "" || strings.Count(at, ".") == 2 || m["token_type"] != "Bearer" ||
				m["issued_token_type"] != typeAccess || m["scope"] != tc.scope || exp <= 0 || exp > 3600 {
				t.Fatalf("response %v", m)
			}

			intro := introspectJSON(t, s, at)
			for k, v := range map[string]any{"active": true, "sub": userName, "client_id": mcpServerID, "scope": tc.scope, "iss": s.Issuer} {
				if intro[k] != v {
					t.Errorf("introspection %s = %v, want %v", k, intro[k], v)
				}
			}
			if aud := strs(intro["aud"]); len(aud) != 1 || aud[0] != apiResource {
				t.Errorf("aud = %v", intro["aud"])
			}
			if act, _ := intro["act"].(map[string]any); len(act) != 1 || act["sub"] != mcpServerID {
				t.Errorf("act = %v", intro["act"])
			}
			if e := int64(intro["exp"].(float64)); tc.expMax != 0 && e > tc.expMax {
				t.Errorf("exp %d outlives the subject token's %d", e, tc.expMax)
			}

			jt, err := jwt.Parse([]byte(introspectJWT(t, s, at)), jwt.WithKeySet(s.PublicKeys()), jwt.WithAudience(apiResource))
			if err != nil {
				t.Fatal(err)
			}
			if act, _ := jt.Get("act"); act == nil || act.(map[string]any)["sub"] != mcpServerID {
				t.Errorf("JWT act = %v", act)
			}
			if jt.Subject() != userName {
				t.Errorf("JWT sub = %q", jt.Subject())
			}
		})
	}

	t.Run("exchanged tokens can be revoked", func(t *testing.T) {
		_, m, _ := exchange(t, s, mcpServerID, mcpSecret, url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}})
		at := m["access_token"].(string)
		resp, _ := post(t, s.URL+demoas.RevocationPath, mcpServerID, mcpSecret, url.Values{"token": {at}}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if intro := introspectJSON(t, s, at); intro["active"] != false {
			t.Fatalf("revoked exchanged token active: %v", intro)
		}
	})
}

func TestTokenExchangeErrors(t *testing.T) {
	cfg := loginConfig()
	cfg.Clients = append(cfg.Clients, demoas.Client{ID: "svc", Secret: "svc-secret", Scopes: []string{"mcp:tools"}, Resources: []string{mcpResource}})
	s := startConfig(t, cfg)
	clientID := registerPublic(t, s)
	toolsOpaque, toolsJWT := userTokens(t, s, clientID, "mcp:tools")
	revokedOpaque, _ := userTokens(t, s, clientID, "mcp:tools")
	if err := s.Revoke(revokedOpaque); err != nil {
		t.Fatal(err)
	}
	// A client credentials token for another audience than From.
	agentJWT := introspectJWT(t, s, token(t, s, "mcp:tools"))
	other := startConfig(t, loginConfig())
	otherJWT := introspectJWT(t, other, token(t, other, "mcp:tools"))
	// A JWT of the other server for the MCP resource: right audience, wrong issuer and key.
	_, otherUserJWT := userTokens(t, other, registerPublic(t, other), "mcp:tools")
	noneJWT := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + strings.Split(toolsJWT, ".")[1] + "."

	good := func(kv ...string) url.Values {
		f := url.Values{"subject_token": {toolsJWT}, "subject_token_type": {typeJWT}, "resource": {apiResource}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	for _, tc := range []struct {
		name       string
		id, secret string
		form       url.Values
		status     int
		error      string
	}{
		{"no subject_token", mcpServerID, mcpSecret, good("subject_token", ""), 400, "invalid_request"},
		{"no subject_token_type", mcpServerID, mcpSecret, good("subject_token_type", ""), 400, "invalid_request"},
		{"unsupported subject_token_type", mcpServerID, mcpSecret, good("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
		{"garbled JWT", mcpServerID, mcpSecret, good("subject_token", "not-a-jwt"), 400, "invalid_request"},
		{"three garbled parts", mcpServerID, mcpSecret, good("subject_token", "a.b.c"), 400, "invalid_request"},
		{"actor token", mcpServerID, mcpSecret, good("actor_token", toolsJWT, "actor_token_type", typeJWT), 400, "invalid_request"},
		{"requested refresh token", mcpServerID, mcpSecret, good("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "invalid_request"},
		{"signed with another key", mcpServerID, mcpSecret, good("subject_token", foreignJWT(t, s.Issuer, jwa.RS256)), 400, "invalid_grant"},
		{"HS256", mcpServerID, mcpSecret, good("subject_token", foreignJWT(t, s.Issuer, jwa.HS256)), 400, "invalid_grant"},
		{"alg none", mcpServerID, mcpSecret, good("subject_token", noneJWT), 400, "invalid_grant"},
		{"tampered", mcpServerID, mcpSecret, good("subject_token", tamper(t, toolsJWT)), 400, "invalid_grant"},
		{"another server's token", mcpServerID, mcpSecret, good("subject_token", otherUserJWT), 400, "invalid_grant"},
		{"another server's client token", mcpServerID, mcpSecret, good("subject_token", otherJWT), 400, "invalid_grant"},
		{"audience without From", mcpServerID, mcpSecret, good("subject_token", agentJWT), 400, "invalid_grant"},
		{"revoked opaque token", mcpServerID, mcpSecret, good("subject_token", revokedOpaque, "subject_token_type", typeAccess), 400, "invalid_grant"},
		{"unknown opaque token", mcpServerID, mcpSecret, good("subject_token", "ory_at_nope.nope", "subject_token_type", typeAccess), 400, "invalid_grant"},
		{"opaque token typed as JWT", mcpServerID, mcpSecret, good("subject_token", toolsOpaque), 400, "invalid_request"},
		{"client not allowed", agentID, agentSecret, good(), 400, "unauthorized_client"},
		{"client allowed for another token", "svc", "svc-secret", good(), 400, "unauthorized_client"},
		{"wrong secret", mcpServerID, "wrong", good(), 401, "invalid_client"},
		{"resource not a target", mcpServerID, mcpSecret, good("resource", mcpResource), 400, "invalid_target"},
		{"unknown resource", mcpServerID, mcpSecret, good("resource", otherResource), 400, "invalid_target"},
		{"resource and audience differ", mcpServerID, mcpSecret, good("audience", mcpResource), 400, "invalid_target"},
		{"scope the subject cannot become", mcpServerID, mcpSecret, good("scope", "api:write"), 400, "invalid_scope"},
		{"scope of another resource", mcpServerID, mcpSecret, good("scope", "mcp:tools"), 400, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subjectToken := tc.form.Get("subject_token")
			status, m, body := exchange(t, s, tc.id, tc.secret, tc.form)
			if status != tc.status || m["error"] != tc.error {
				t.Fatalf("status %d, %v; want %d %s", status, m, tc.status, tc.error)
			}
			if len(subjectToken) > 10 && strings.Contains(body, subjectToken) {
				t.Fatal("the error echoes the subject token")
			}
		})
	}

	t.Run("public client", func(t *testing.T) {
		form := good()
		form.Set("client_id", clientID)
		status, m, _ := exchange(t, s, "", "", form)
		if status != http.StatusBadRequest || m["error"] != "unauthorized_client" {
			t.Fatalf("status %d, %v", status, m)
		}
	})
	t.Run("no target when the client has two", func(t *testing.T) {
		cfg := loginConfig()
		cfg.Resources = append(cfg.Resources, demoas.Resource{URL: otherResource, Scopes: []string{"other:read"}})
		cfg.Exchanges = append(cfg.Exchanges, demoas.Exchange{Client: mcpServerID, From: mcpResource, To: otherResource,
			Scopes: map[string][]string{"mcp:tools": {"other:read"}}})
		s := startConfig(t, cfg)
		_, jwtToken := userTokens(t, s, registerPublic(t, s), "mcp:tools")
		status, m, _ := exchange(t, s, mcpServerID, mcpSecret, url.Values{"subject_token": {jwtToken}, "subject_token_type": {typeJWT}})
		if status != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Fatalf("status %d, %v", status, m)
		}
		status, m, _ = exchange(t, s, mcpServerID, mcpSecret, url.Values{"subject_token": {jwtToken}, "subject_token_type": {typeJWT}, "resource": {otherResource}})
		if status != http.StatusOK || m["scope"] != "other:read" {
			t.Fatalf("status %d, %v", status, m)
		}
	})
}

// TestTokenExchangeLifetime checks the issued token never outlives the
// subject token, and that an expired subject token is refused.
func TestTokenExchangeLifetime(t *testing.T) {
	cfg := loginConfig()
	cfg.TokenLifetime = 3 * time.Second
	cfg.Clients = append(cfg.Clients, demoas.Client{ID: "svc", Secret: "svc-secret", Scopes: []string{"mcp:tools"}, Resources: []string{mcpResource}})
	s := startConfig(t, cfg)
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {mcpResource}}
	resp, body := post(t, s.URL+demoas.TokenPath, "svc", "svc-secret", form, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	subjectJWT := introspectJWT(t, s, tokenField(t, body, "access_token"))
	subject, err := jwt.Parse([]byte(subjectJWT), jwt.WithKeySet(s.PublicKeys()))
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(time.Second)
	status, m, _ := exchange(t, s, mcpServerID, mcpSecret, url.Values{"subject_token": {subjectJWT}, "subject_token_type": {typeJWT}})
	if status != http.StatusOK {
		t.Fatalf("status %d, %v", status, m)
	}
	// The subject token has at most 2s left (its exp is in whole seconds).
	if m["expires_in"].(float64) > 2 {
		t.Errorf("expires_in %v, want at most the subject token's remaining time", m["expires_in"])
	}
	intro := introspectJSON(t, s, m["access_token"].(string))
	if int64(intro["exp"].(float64)) > subject.Expiration().Unix() || intro["sub"] != "svc" {
		t.Errorf("introspection %v, subject exp %d", intro, subject.Expiration().Unix())
	}

	time.Sleep(time.Until(subject.Expiration()) + 100*time.Millisecond)
	status, m, _ = exchange(t, s, mcpServerID, mcpSecret, url.Values{"subject_token": {subjectJWT}, "subject_token_type": {typeJWT}})
	if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("expired subject token: status %d, %v", status, m)
	}
}
