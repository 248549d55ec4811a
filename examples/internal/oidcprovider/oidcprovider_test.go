package oidcprovider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

const (
	resource = "http://127.0.0.1:8443/mcp"
	scope    = "mcp:tools mcp:read"
	ttl      = 120 * time.Second

	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken    = "urn:ietf:params:oauth:token-type:access_token"
	typeJWT            = "urn:ietf:params:oauth:token-type:jwt"
	mediaIntrospectJWT = "application/token-introspection+jwt"
	assertionType      = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	// Test fixtures only: the server lives for one test, on loopback.
	mcpClient     = "mcp-client"
	mcpSecret     = "mcp-client-secret"
	gateway       = "gateway"
	gatewaySecret = "gateway-secret"
	plainGateway  = "plain-gateway"
	plainSecret   = "plain-gateway-secret"
	keyGateway    = "gateway-pkjwt"
)

// fixture is one running server with the clients the tests use.
type fixture struct {
	*Provider
	jwks      jwk.Set
	clientKey jwk.Key // keyGateway's private key
}

func start(t *testing.T) *fixture {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = priv.Set(jwk.KeyIDKey, "gateway-key-1")
	_ = priv.Set(jwk.AlgorithmKey, jwa.RS256)
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	var pubMap map[string]any
	if err := json.Unmarshal(pubJSON, &pubMap); err != nil {
		t.Fatal(err)
	}

	p := Start(t, Options{
		Resource:       resource,
		AccessTokenTTL: ttl,
		Clients: []map[string]any{
			// The MCP client that gets tokens.
			{"client_id": mcpClient, "client_secret": mcpSecret, "grant_types": []string{"client_credentials"}},
			// The gateway: signed introspection responses and token exchange.
			{
				"client_id": gateway, "client_secret": gatewaySecret,
				"grant_types":                       []string{grantTokenExchange},
				"introspection_signed_response_alg": "RS256",
			},
			// A gateway registered for client_secret_post, nothing else.
			{
				"client_id": plainGateway, "client_secret": plainSecret,
				"token_endpoint_auth_method": "client_secret_post",
			},
			// A gateway that authenticates with private_key_jwt.
			{
				"client_id":                  keyGateway,
				"token_endpoint_auth_method": "private_key_jwt",
				"jwks":                       map[string]any{"keys": []any{pubMap}},
				"grant_types":                []string{grantTokenExchange},
			},
		},
	})
	set, err := jwk.Fetch(context.Background(), p.JWKSURL, jwk.WithHTTPClient(httpClient))
	if err != nil {
		t.Fatalf("fetching %s: %v", p.JWKSURL, err)
	}
	return &fixture{Provider: p, jwks: set, clientKey: priv}
}

type response struct {
	status      int
	contentType string // media type only
	body        []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	if r.contentType != "application/json" {
		t.Fatalf("content type %q, want application/json; body %s", r.contentType, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return m
}

// auth is a client authentication method applied to a request.
type auth func(req *http.Request, form url.Values)

func basic(id, secret string) auth {
	return func(req *http.Request, _ url.Values) {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
}

func post(id, secret string) auth {
	return func(_ *http.Request, form url.Values) {
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	}
}

// privateKeyJWT authenticates with an RFC 7523 assertion for audience aud.
func (f *fixture) privateKeyJWT(t *testing.T, aud string) auth {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewBuilder().
		Issuer(keyGateway).
		Subject(keyGateway).
		Audience([]string{aud}).
		IssuedAt(now).
		Expiration(now.Add(60 * time.Second)).
		JwtID(randomID(t)).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, f.clientKey))
	if err != nil {
		t.Fatal(err)
	}
	return func(_ *http.Request, form url.Values) {
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", string(signed))
	}
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (f *fixture) do(t *testing.T, endpoint string, a auth, accept string, form url.Values) response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	a(req, form)
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return response{status: resp.StatusCode, contentType: mt, body: body}
}

func (f *fixture) introspect(t *testing.T, a auth, accept, token string) response {
	t.Helper()
	return f.do(t, f.IntrospectionURL, a, accept, url.Values{"token": {token}, "token_type_hint": {"access_token"}})
}

func (f *fixture) exchange(t *testing.T, a auth, extra url.Values) response {
	t.Helper()
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token_type": {typeAccessToken}}
	for k, v := range extra {
		form[k] = v
	}
	return f.do(t, f.TokenURL, a, "application/json", form)
}

func wantString(t *testing.T, m map[string]any, key, want string) {
	t.Helper()
	if got, _ := m[key].(string); got != want {
		t.Errorf("%s = %#v, want %q (in %v)", key, m[key], want, m)
	}
}

func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("HTTP %d, want %d; body %s", r.status, status, r.body)
	}
	wantString(t, r.json(t), "error", code)
}

// checkActive checks a JSON introspection response for a client-credentials
// token of mcpClient for the resource.
func checkActive(t *testing.T, m map[string]any, issuer string) {
	t.Helper()
	if m["active"] != true {
		t.Fatalf("active = %#v, want true (in %v)", m["active"], m)
	}
	wantString(t, m, "aud", resource)
	wantString(t, m, "client_id", mcpClient)
	wantString(t, m, "scope", scope)
	wantString(t, m, "iss", issuer)
	wantString(t, m, "token_type", "Bearer")
	exp, _ := m["exp"].(float64)
	iat, _ := m["iat"].(float64)
	if now := float64(time.Now().Unix()); exp <= now || exp > now+ttl.Seconds()+1 || iat == 0 || exp-iat != ttl.Seconds() {
		t.Errorf("exp %v, iat %v: want exp - iat = %v and exp in the future", exp, iat, ttl.Seconds())
	}
	// oidc-provider sends no sub for client-credentials tokens (no
	// accountId), and no jti for opaque tokens (the token is the jti).
	for _, absent := range []string{"sub", "jti"} {
		if v, ok := m[absent]; ok {
			t.Errorf("%s = %#v, want it absent for a client-credentials token", absent, v)
		}
	}
}

func TestClientCredentialsTokenIsOpaque(t *testing.T) {
	f := start(t)
	tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	if strings.Count(tok, ".") != 0 {
		t.Errorf("token %q looks structured, want an opaque token", tok)
	}
	if _, err := jws.Parse([]byte(tok)); err == nil {
		t.Errorf("token parses as a JWS, want an opaque token")
	}
	// Without a resource parameter, the default resource applies.
	tok2 := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, "")
	checkActive(t, f.introspect(t, basic(gateway, gatewaySecret), "", tok2).json(t), f.Issuer)
	// An unknown resource is refused.
	r := f.do(t, f.TokenURL, basic(mcpClient, mcpSecret), "", url.Values{
		"grant_type": {"client_credentials"}, "scope": {scope}, "resource": {"http://127.0.0.1:1/other"},
	})
	wantError(t, r, http.StatusBadRequest, "invalid_target")
}

func TestIntrospectionJSON(t *testing.T) {
	f := start(t)
	tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	for _, tc := range []struct {
		name string
		auth auth
	}{
		{"client_secret_basic", basic(gateway, gatewaySecret)},
		{"client_secret_post", post(gateway, gatewaySecret)},
		{"client_secret_post registered", post(plainGateway, plainSecret)},
		{"client_secret_basic for a client_secret_post client", basic(plainGateway, plainSecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.introspect(t, tc.auth, "application/json", tok)
			if r.status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", r.status, r.body)
			}
			checkActive(t, r.json(t), f.Issuer)
		})
	}
	t.Run("no Accept header is JSON", func(t *testing.T) {
		r := f.introspect(t, basic(gateway, gatewaySecret), "", tok)
		checkActive(t, r.json(t), f.Issuer)
	})
	t.Run("unknown token is inactive", func(t *testing.T) {
		m := f.introspect(t, basic(gateway, gatewaySecret), "", "not-a-token").json(t)
		if len(m) != 1 || m["active"] != false {
			t.Errorf("got %v, want {active:false}", m)
		}
	})
	t.Run("wrong secret is invalid_client", func(t *testing.T) {
		wantError(t, f.introspect(t, basic(gateway, "wrong"), "", tok), http.StatusUnauthorized, "invalid_client")
	})
}

// verifyJWT checks the signature of a compact JWS against the provider's
// JWKS and returns its protected header.
func (f *fixture) verifyJWT(t *testing.T, compact []byte) jws.Headers {
	t.Helper()
	if _, err := jws.Verify(compact, jws.WithKeySet(f.jwks, jws.WithRequireKid(true))); err != nil {
		t.Fatalf("JWS does not verify with %s: %v", f.JWKSURL, err)
	}
	msg, err := jws.Parse(compact)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Signatures()) != 1 {
		t.Fatalf("%d signatures", len(msg.Signatures()))
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.Algorithm() != jwa.RS256 {
		t.Errorf("alg %v, want RS256", h.Algorithm())
	}
	if h.KeyID() == "" {
		t.Error("no kid")
	}
	return h
}

func TestIntrospectionRFC9701(t *testing.T) {
	f := start(t)
	tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)

	signed := func(t *testing.T, a auth, clientID, token string) map[string]any {
		t.Helper()
		r := f.introspect(t, a, mediaIntrospectJWT, token)
		if r.status != http.StatusOK || r.contentType != mediaIntrospectJWT {
			t.Fatalf("HTTP %d, content type %q, want 200 %s; body %s", r.status, r.contentType, mediaIntrospectJWT, r.body)
		}
		h := f.verifyJWT(t, r.body)
		if h.Type() != "token-introspection+jwt" {
			t.Errorf("typ %q, want token-introspection+jwt", h.Type())
		}
		parsed, err := jwt.Parse(r.body,
			jwt.WithKeySet(f.jwks),
			jwt.WithIssuer(f.Issuer),
			jwt.WithAudience(clientID),
			jwt.WithRequiredClaim(jwt.IssuedAtKey),
			jwt.WithAcceptableSkew(5*time.Second),
		)
		if err != nil {
			t.Fatalf("introspection JWT: %v", err)
		}
		if iat := parsed.IssuedAt(); time.Since(iat) > time.Minute || time.Until(iat) > 5*time.Second {
			t.Errorf("iat %v is not fresh", iat)
		}
		if !parsed.Expiration().IsZero() {
			t.Logf("introspection JWT has exp %v", parsed.Expiration())
		}
		ti, ok := parsed.PrivateClaims()["token_introspection"].(map[string]any)
		if !ok {
			t.Fatalf("no token_introspection object in %v", parsed.PrivateClaims())
		}
		return ti
	}

	t.Run("client with introspection_signed_response_alg", func(t *testing.T) {
		checkActive(t, signed(t, basic(gateway, gatewaySecret), gateway, tok), f.Issuer)
	})
	t.Run("client without it (RS256 is oidc-provider's default)", func(t *testing.T) {
		checkActive(t, signed(t, post(plainGateway, plainSecret), plainGateway, tok), f.Issuer)
	})
	t.Run("inactive token", func(t *testing.T) {
		ti := signed(t, basic(gateway, gatewaySecret), gateway, "not-a-token")
		if len(ti) != 1 || ti["active"] != false {
			t.Errorf("token_introspection = %v, want {active:false}", ti)
		}
	})
	t.Run("JSON preferred when both are acceptable", func(t *testing.T) {
		r := f.introspect(t, basic(gateway, gatewaySecret), "application/json, "+mediaIntrospectJWT, tok)
		checkActive(t, r.json(t), f.Issuer)
	})
}

func TestIntrospectionPrivateKeyJWT(t *testing.T) {
	f := start(t)
	tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	// oidc-provider accepts the issuer, the token endpoint, or the URL of the
	// endpoint being called.
	for _, aud := range []string{f.Issuer, f.TokenURL, f.IntrospectionURL} {
		t.Run("aud="+aud, func(t *testing.T) {
			r := f.introspect(t, f.privateKeyJWT(t, aud), "", tok)
			if r.status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", r.status, r.body)
			}
			checkActive(t, r.json(t), f.Issuer)
		})
	}
	for _, aud := range []string{f.RevocationURL, f.Issuer + "/", resource} {
		t.Run("rejected aud="+aud, func(t *testing.T) {
			wantError(t, f.introspect(t, f.privateKeyJWT(t, aud), "", tok), http.StatusUnauthorized, "invalid_client")
		})
	}
	t.Run("replayed assertion", func(t *testing.T) {
		a := f.privateKeyJWT(t, f.IntrospectionURL)
		if r := f.introspect(t, a, "", tok); r.status != http.StatusOK {
			t.Fatalf("first use: HTTP %d: %s", r.status, r.body)
		}
		wantError(t, f.introspect(t, a, "", tok), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("signed response", func(t *testing.T) {
		r := f.introspect(t, f.privateKeyJWT(t, f.IntrospectionURL), mediaIntrospectJWT, tok)
		if r.status != http.StatusOK || r.contentType != mediaIntrospectJWT {
			t.Fatalf("HTTP %d %q: %s", r.status, r.contentType, r.body)
		}
		if _, err := jwt.Parse(r.body, jwt.WithKeySet(f.jwks), jwt.WithAudience(keyGateway), jwt.WithIssuer(f.Issuer)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTokenExchange(t *testing.T) {
	f := start(t)
	subject := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	subjectInfo := f.introspect(t, basic(gateway, gatewaySecret), "", subject).json(t)
	subjectExp := int64(subjectInfo["exp"].(float64))

	for _, tc := range []struct {
		name      string
		auth      auth
		form      url.Values
		wantType  string
		wantScope string
	}{
		{"default type", basic(gateway, gatewaySecret), url.Values{"resource": {resource}}, typeJWT, scope},
		{"jwt", basic(gateway, gatewaySecret), url.Values{"resource": {resource}, "requested_token_type": {typeJWT}}, typeJWT, scope},
		{"access_token", post(gateway, gatewaySecret), url.Values{"resource": {resource}, "requested_token_type": {typeAccessToken}}, typeAccessToken, scope},
		{"audience instead of resource", basic(gateway, gatewaySecret), url.Values{"audience": {resource}}, typeJWT, scope},
		{"no target (default resource)", basic(gateway, gatewaySecret), url.Values{}, typeJWT, scope},
		{"narrower scope", basic(gateway, gatewaySecret), url.Values{"resource": {resource}, "scope": {"mcp:read"}}, typeJWT, "mcp:read"},
		{"private_key_jwt", f.privateKeyJWT(t, f.TokenURL), url.Values{"resource": {resource}}, typeJWT, scope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"subject_token": {subject}}
			for k, v := range tc.form {
				form[k] = v
			}
			r := f.exchange(t, tc.auth, form)
			if r.status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", r.status, r.body)
			}
			m := r.json(t)
			wantString(t, m, "issued_token_type", tc.wantType)
			wantString(t, m, "token_type", "Bearer")
			wantString(t, m, "scope", tc.wantScope)
			expiresIn, _ := m["expires_in"].(float64)
			if expiresIn <= 0 || expiresIn > ttl.Seconds() {
				t.Errorf("expires_in %v, want in (0, %v]", expiresIn, ttl.Seconds())
			}
			at, _ := m["access_token"].(string)

			h := f.verifyJWT(t, []byte(at))
			if h.Type() != "at+jwt" {
				t.Errorf("typ %q, want at+jwt", h.Type())
			}
			parsed, err := jwt.Parse([]byte(at),
				jwt.WithKeySet(f.jwks),
				jwt.WithIssuer(f.Issuer),
				jwt.WithAudience(resource),
				jwt.WithSubject(mcpClient),
				jwt.WithClaimValue("client_id", mcpClient),
				jwt.WithClaimValue("scope", tc.wantScope),
				jwt.WithRequiredClaim(jwt.IssuedAtKey),
				jwt.WithRequiredClaim(jwt.JwtIDKey),
			)
			if err != nil {
				t.Fatalf("exchanged JWT: %v", err)
			}
			if aud := parsed.Audience(); !slices.Equal(aud, []string{resource}) {
				t.Errorf("aud %v, want [%s]", aud, resource)
			}
			if exp := parsed.Expiration().Unix(); exp > subjectExp {
				t.Errorf("exp %d is after the subject token's exp %d", exp, subjectExp)
			}
			// A structured token is not introspectable at oidc-provider.
			wantError(t, f.introspect(t, basic(gateway, gatewaySecret), "", at), http.StatusBadRequest, "unsupported_token_type")
		})
	}
}

func TestTokenExchangeErrors(t *testing.T) {
	f := start(t)
	subject := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	gw := basic(gateway, gatewaySecret)
	for _, tc := range []struct {
		name   string
		auth   auth
		form   url.Values
		status int
		code   string
	}{
		{"bogus subject", gw, url.Values{"subject_token": {"bogus"}, "resource": {resource}}, 400, "invalid_request"},
		{"missing subject", gw, url.Values{"resource": {resource}}, 400, "invalid_request"},
		{"wrong resource", gw, url.Values{"subject_token": {subject}, "resource": {"http://127.0.0.1:1/other"}}, 400, "invalid_target"},
		{"wrong audience", gw, url.Values{"subject_token": {subject}, "audience": {"other"}}, 400, "invalid_target"},
		{"two resources", gw, url.Values{"subject_token": {subject}, "resource": {resource, "http://127.0.0.1:1/other"}}, 400, "invalid_target"},
		{"unsupported requested_token_type", gw, url.Values{"subject_token": {subject}, "resource": {resource}, "requested_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}, 400, "invalid_request"},
		{"unsupported subject_token_type", gw, url.Values{"subject_token": {subject}, "resource": {resource}, "subject_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, 400, "invalid_request"},
		{"scope beyond the subject's", gw, url.Values{"subject_token": {subject}, "resource": {resource}, "scope": {"mcp:admin"}}, 400, "invalid_scope"},
		// oidc-provider answers invalid_request (not unauthorized_client) for a
		// grant type the client is not registered for.
		{"client without the grant", basic(mcpClient, mcpSecret), url.Values{"subject_token": {subject}, "resource": {resource}}, 400, "invalid_request"},
		{"wrong client secret", basic(gateway, "wrong"), url.Values{"subject_token": {subject}, "resource": {resource}}, 401, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.exchange(t, tc.auth, tc.form), tc.status, tc.code)
		})
	}
	t.Run("exchanged JWT as subject", func(t *testing.T) {
		r := f.exchange(t, gw, url.Values{"subject_token": {subject}, "resource": {resource}})
		at, _ := r.json(t)["access_token"].(string)
		wantError(t, f.exchange(t, gw, url.Values{"subject_token": {at}, "resource": {resource}}), 400, "invalid_request")
	})
	t.Run("revoked subject", func(t *testing.T) {
		tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
		f.Revoke(t, mcpClient, mcpSecret, tok)
		wantError(t, f.exchange(t, gw, url.Values{"subject_token": {tok}, "resource": {resource}}), 400, "invalid_request")
	})
}

func TestRevokedTokenIsInactive(t *testing.T) {
	f := start(t)
	tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	checkActive(t, f.introspect(t, basic(gateway, gatewaySecret), "", tok).json(t), f.Issuer)
	f.Revoke(t, mcpClient, mcpSecret, tok)
	for _, accept := range []string{"application/json", mediaIntrospectJWT} {
		r := f.introspect(t, basic(gateway, gatewaySecret), accept, tok)
		if r.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", r.status, r.body)
		}
		var m map[string]any
		if accept == mediaIntrospectJWT {
			parsed, err := jwt.Parse(r.body, jwt.WithKeySet(f.jwks), jwt.WithAudience(gateway))
			if err != nil {
				t.Fatal(err)
			}
			m, _ = parsed.PrivateClaims()["token_introspection"].(map[string]any)
		} else {
			m = r.json(t)
		}
		if len(m) != 1 || m["active"] != false {
			t.Errorf("%s: got %v, want {active:false}", accept, m)
		}
	}
	// Only the owning client may revoke.
	other := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
	wantError(t, f.do(t, f.RevocationURL, basic(gateway, gatewaySecret), "", url.Values{"token": {other}}), 400, "invalid_request")
}
