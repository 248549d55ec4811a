package oidcprovider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
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

// start runs the server with the clients above; each mod may change the
// options (enable features, add clients) before the start.
func start(t *testing.T, mods ...func(*Options)) *fixture {
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

	opts := Options{
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
	}
	for _, mod := range mods {
		mod(&opts)
	}
	p := Start(t, opts)
	set, err := jwk.Fetch(context.Background(), p.JWKSURL, jwk.WithHTTPClient(p.client))
	if err != nil {
		t.Fatalf("fetching %s: %v", p.JWKSURL, err)
	}
	return &fixture{Provider: p, jwks: set, clientKey: priv}
}

type response struct {
	status      int
	contentType string // media type only
	header      http.Header
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
	return f.send(t, f.client, endpoint, a, http.Header{"Accept": {accept}}, form)
}

// send POSTs form to endpoint with client, authenticating with a; header
// values that are empty strings are not sent.
func (f *fixture) send(t *testing.T, client *http.Client, endpoint string, a auth, header http.Header, form url.Values) response {
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
	for k, vs := range header {
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return response{status: resp.StatusCode, contentType: mt, header: resp.Header, body: body}
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

// ---------------------------------------------------------------------------
// Sender-constrained tokens: DPoP (RFC 9449) and mTLS (RFC 8705)

const (
	dpopClient   = "dpop-client" // registered with dpop_bound_access_tokens
	dpopSecret   = "dpop-client-secret"
	certClient   = "cert-client" // registered with tls_client_certificate_bound_access_tokens
	certSecret   = "cert-client-secret"
	useDPoPNonce = "use_dpop_nonce"
)

// dpopKey is a DPoP proof key.
type dpopKey struct {
	alg       jwa.SignatureAlgorithm
	priv, pub jwk.Key
}

func newDPoPKey(t *testing.T, alg jwa.SignatureAlgorithm) dpopKey {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case jwa.ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.EdDSA:
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case jwa.RS256:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return dpopKey{alg: alg, priv: priv, pub: pub}
}

// thumbprint is the key's RFC 7638 SHA-256 thumbprint, base64url without
// padding: the cnf.jkt of a token bound to it.
func (k dpopKey) thumbprint(t *testing.T) string {
	t.Helper()
	b, err := k.pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// proof returns a DPoP proof JWT (RFC 9449 §4.2): header typ dpop+jwt, alg,
// jwk = the public key; claims jti, htm, htu, iat. edit, when not nil, may
// change the claims and the header before signing.
func (k dpopKey) proof(t *testing.T, htm, htu string, edit func(jwt.Token, jws.Headers)) string {
	t.Helper()
	tok, err := jwt.NewBuilder().
		JwtID(randomID(t)).
		IssuedAt(time.Now()).
		Claim("htm", htm).
		Claim("htu", htu).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "dpop+jwt")
	_ = hdr.Set(jws.JWKKey, k.pub)
	if edit != nil {
		edit(tok, hdr)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// tokenRequest asks for a client-credentials token for the resource with
// client (which may present a TLS certificate), sending proof as the DPoP
// header when it is not empty.
func (f *fixture) tokenRequest(t *testing.T, client *http.Client, a auth, proof string) response {
	t.Helper()
	return f.send(t, client, f.TokenURL, a,
		http.Header{"Accept": {"application/json"}, "Dpop": {proof}},
		url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "resource": {resource}})
}

// accessToken checks a successful token response and returns its opaque
// access token.
func accessToken(t *testing.T, r response, tokenType string) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token request: HTTP %d: %s", r.status, r.body)
	}
	m := r.json(t)
	wantString(t, m, "token_type", tokenType)
	wantString(t, m, "scope", scope)
	at, _ := m["access_token"].(string)
	if at == "" || strings.Contains(at, ".") {
		t.Fatalf("access_token %q, want an opaque token", at)
	}
	return at
}

// checkIntrospection checks an active introspection answer (JSON, or the
// token_introspection of an RFC 9701 JWT) for a client-credentials token of
// clientID for the resource: token_type, and cnf exactly (nil: absent).
func checkIntrospection(t *testing.T, m map[string]any, issuer, clientID, tokenType string, cnf map[string]any) {
	t.Helper()
	if m["active"] != true {
		t.Fatalf("active = %#v, want true (in %v)", m["active"], m)
	}
	wantString(t, m, "aud", resource)
	wantString(t, m, "client_id", clientID)
	wantString(t, m, "scope", scope)
	wantString(t, m, "iss", issuer)
	wantString(t, m, "token_type", tokenType)
	got, present := m["cnf"]
	switch {
	case cnf == nil && present:
		t.Errorf("cnf = %#v, want it absent for an unbound token", got)
	case cnf != nil && !reflect.DeepEqual(got, cnf):
		t.Errorf("cnf = %#v, want %#v", got, cnf)
	}
}

// introspectBoth introspects token as the gateway as JSON and as an RFC 9701
// JWT, and checks both answers with checkIntrospection. It returns the JSON
// body.
func (f *fixture) introspectBoth(t *testing.T, token, clientID, tokenType string, cnf map[string]any) []byte {
	t.Helper()
	r := f.introspect(t, basic(gateway, gatewaySecret), "application/json", token)
	if r.status != http.StatusOK {
		t.Fatalf("introspection: HTTP %d: %s", r.status, r.body)
	}
	checkIntrospection(t, r.json(t), f.Issuer, clientID, tokenType, cnf)

	rj := f.introspect(t, basic(gateway, gatewaySecret), mediaIntrospectJWT, token)
	if rj.status != http.StatusOK || rj.contentType != mediaIntrospectJWT {
		t.Fatalf("JWT introspection: HTTP %d %q: %s", rj.status, rj.contentType, rj.body)
	}
	parsed, err := jwt.Parse(rj.body, jwt.WithKeySet(f.jwks), jwt.WithIssuer(f.Issuer), jwt.WithAudience(gateway))
	if err != nil {
		t.Fatalf("introspection JWT: %v", err)
	}
	ti, ok := parsed.PrivateClaims()["token_introspection"].(map[string]any)
	if !ok {
		t.Fatalf("no token_introspection object in %v", parsed.PrivateClaims())
	}
	checkIntrospection(t, ti, f.Issuer, clientID, tokenType, cnf)
	return r.body
}

func withDPoPClient(o *Options) {
	o.Clients = append(o.Clients, map[string]any{
		"client_id": dpopClient, "client_secret": dpopSecret,
		"grant_types":              []string{"client_credentials"},
		"dpop_bound_access_tokens": true,
	})
}

func TestDPoPOffByDefault(t *testing.T) {
	f := start(t)
	if v, ok := f.Discovery["dpop_signing_alg_values_supported"]; ok {
		t.Errorf("discovery has dpop_signing_alg_values_supported %v with DPoP off", v)
	}
	// A proof is ignored: the token is a Bearer token.
	k := newDPoPKey(t, jwa.ES256)
	tok := accessToken(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), k.proof(t, "POST", f.TokenURL, nil)), "Bearer")
	f.introspectBoth(t, tok, mcpClient, "Bearer", nil)
}

func TestDPoP(t *testing.T) {
	f := start(t, func(o *Options) { o.DPoP = true }, withDPoPClient)
	algs, _ := f.Discovery["dpop_signing_alg_values_supported"].([]any)
	for _, want := range []string{"ES256", "EdDSA"} {
		if !slices.Contains(algs, any(want)) {
			t.Errorf("dpop_signing_alg_values_supported %v lacks %s", algs, want)
		}
	}

	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256, jwa.EdDSA} {
		for _, c := range []struct{ id, secret string }{{mcpClient, mcpSecret}, {dpopClient, dpopSecret}} {
			t.Run(alg.String()+"/"+c.id, func(t *testing.T) {
				k := newDPoPKey(t, alg)
				r := f.tokenRequest(t, f.client, basic(c.id, c.secret), k.proof(t, "POST", f.TokenURL, nil))
				tok := accessToken(t, r, "DPoP")
				if n := r.header.Get("DPoP-Nonce"); n != "" {
					t.Errorf("DPoP-Nonce %q without DPoPRequireNonce", n)
				}
				body := f.introspectBoth(t, tok, c.id, "DPoP", map[string]any{"jkt": k.thumbprint(t)})
				t.Logf("introspection: %s", body)
			})
		}
	}

	t.Run("no proof, DPoP optional", func(t *testing.T) {
		tok := accessToken(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), ""), "Bearer")
		f.introspectBoth(t, tok, mcpClient, "Bearer", nil)
		// The launcher's helper still gets Bearer tokens.
		checkActive(t, f.introspect(t, basic(gateway, gatewaySecret), "",
			f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)).json(t), f.Issuer)
	})
	t.Run("no proof, dpop_bound_access_tokens", func(t *testing.T) {
		wantError(t, f.tokenRequest(t, f.client, basic(dpopClient, dpopSecret), ""), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("replayed proof", func(t *testing.T) {
		proof := newDPoPKey(t, jwa.ES256).proof(t, "POST", f.TokenURL, nil)
		accessToken(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), proof), "DPoP")
		wantError(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), proof), http.StatusBadRequest, "invalid_grant")
	})

	es := newDPoPKey(t, jwa.ES256)
	other := newDPoPKey(t, jwa.ES256)
	for _, tc := range []struct {
		name  string
		proof string
	}{
		{"htu of another endpoint", es.proof(t, "POST", f.IntrospectionURL, nil)},
		{"htm GET", es.proof(t, "GET", f.TokenURL, nil)},
		{"RS256 (not in dpop_signing_alg_values_supported)", newDPoPKey(t, jwa.RS256).proof(t, "POST", f.TokenURL, nil)},
		{"typ JWT", es.proof(t, "POST", f.TokenURL, func(_ jwt.Token, h jws.Headers) { _ = h.Set(jws.TypeKey, "JWT") })},
		{"no jwk header", es.proof(t, "POST", f.TokenURL, func(_ jwt.Token, h jws.Headers) { _ = h.Remove(jws.JWKKey) })},
		{"jwk of another key", es.proof(t, "POST", f.TokenURL, func(_ jwt.Token, h jws.Headers) { _ = h.Set(jws.JWKKey, other.pub) })},
		{"no jti", es.proof(t, "POST", f.TokenURL, func(tok jwt.Token, _ jws.Headers) { _ = tok.Remove(jwt.JwtIDKey) })},
		{"stale iat", es.proof(t, "POST", f.TokenURL, func(tok jwt.Token, _ jws.Headers) {
			_ = tok.Set(jwt.IssuedAtKey, time.Now().Add(-10*time.Minute))
		})},
		{"nonce without nonce support", es.proof(t, "POST", f.TokenURL, func(tok jwt.Token, _ jws.Headers) { _ = tok.Set("nonce", "n-1") })},
		{"not a JWT", "not-a-proof"},
	} {
		t.Run("invalid proof: "+tc.name, func(t *testing.T) {
			wantError(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), tc.proof), http.StatusBadRequest, "invalid_dpop_proof")
		})
	}

	t.Run("revoked DPoP token is inactive", func(t *testing.T) {
		tok := accessToken(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), es.proof(t, "POST", f.TokenURL, nil)), "DPoP")
		f.Revoke(t, mcpClient, mcpSecret, tok)
		if m := f.introspect(t, basic(gateway, gatewaySecret), "", tok).json(t); len(m) != 1 || m["active"] != false {
			t.Errorf("got %v, want {active:false}", m)
		}
	})
	t.Run("DPoP-bound subject token is not exchanged", func(t *testing.T) {
		tok := accessToken(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), es.proof(t, "POST", f.TokenURL, nil)), "DPoP")
		wantError(t, f.exchange(t, basic(gateway, gatewaySecret), url.Values{"subject_token": {tok}, "resource": {resource}}), 400, "invalid_request")
	})
}

func TestDPoPRequireNonce(t *testing.T) {
	f := start(t, func(o *Options) { o.DPoP = true; o.DPoPRequireNonce = true }, withDPoPClient)
	k := newDPoPKey(t, jwa.ES256)
	withNonce := func(n string) func(jwt.Token, jws.Headers) {
		return func(tok jwt.Token, _ jws.Headers) { _ = tok.Set("nonce", n) }
	}

	// RFC 9449 §8: the first proof has no nonce; the answer is
	// use_dpop_nonce with one in the DPoP-Nonce header.
	r := f.tokenRequest(t, f.client, basic(dpopClient, dpopSecret), k.proof(t, "POST", f.TokenURL, nil))
	wantError(t, r, http.StatusBadRequest, useDPoPNonce)
	nonce := r.header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatalf("no DPoP-Nonce header on use_dpop_nonce (headers %v)", r.header)
	}
	t.Logf("use_dpop_nonce answer: %s; DPoP-Nonce %q; WWW-Authenticate %q", r.body, nonce, r.header.Get("WWW-Authenticate"))

	// The retry with the nonce succeeds.
	r = f.tokenRequest(t, f.client, basic(dpopClient, dpopSecret), k.proof(t, "POST", f.TokenURL, withNonce(nonce)))
	tok := accessToken(t, r, "DPoP")
	t.Logf("success: DPoP-Nonce %q", r.header.Get("DPoP-Nonce"))
	body := f.introspectBoth(t, tok, dpopClient, "DPoP", map[string]any{"jkt": k.thumbprint(t)})
	t.Logf("introspection: %s", body)

	t.Run("nonce is reusable within its window", func(t *testing.T) {
		// Nonces are stateless (time-window HMACs), not single-use: only the
		// proof's jti must be new.
		accessToken(t, f.tokenRequest(t, f.client, basic(dpopClient, dpopSecret), k.proof(t, "POST", f.TokenURL, withNonce(nonce))), "DPoP")
	})
	t.Run("unknown nonce", func(t *testing.T) {
		r := f.tokenRequest(t, f.client, basic(dpopClient, dpopSecret), k.proof(t, "POST", f.TokenURL, withNonce("bogus")))
		wantError(t, r, http.StatusBadRequest, useDPoPNonce)
		if r.header.Get("DPoP-Nonce") == "" {
			t.Error("no DPoP-Nonce header")
		}
	})
	t.Run("no proof, DPoP optional", func(t *testing.T) {
		// The nonce concerns proofs only: a client without
		// dpop_bound_access_tokens still gets a Bearer token without one.
		accessToken(t, f.tokenRequest(t, f.client, basic(mcpClient, mcpSecret), ""), "Bearer")
	})
}

// certThumbprint is base64url(SHA-256(DER)) of cert's leaf: the
// cnf["x5t#S256"] of a token bound to it.
func certThumbprint(cert tls.Certificate) string {
	sum := sha256.Sum256(cert.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestMTLS(t *testing.T) {
	f := start(t, func(o *Options) {
		o.MTLS = true
		o.DPoP = true
		o.Clients = append(o.Clients, map[string]any{
			"client_id": certClient, "client_secret": certSecret,
			"grant_types": []string{"client_credentials"},
			"tls_client_certificate_bound_access_tokens": true,
		})
	})
	if !strings.HasPrefix(f.Issuer, "https://127.0.0.1:") || !strings.HasPrefix(f.TokenURL, f.Issuer+"/") {
		t.Errorf("issuer %q, token endpoint %q: want https://127.0.0.1:PORT", f.Issuer, f.TokenURL)
	}
	if f.Discovery["tls_client_certificate_bound_access_tokens"] != true {
		t.Errorf("discovery tls_client_certificate_bound_access_tokens = %#v, want true", f.Discovery["tls_client_certificate_bound_access_tokens"])
	}
	if block, _ := pem.Decode(f.RootCAPEM); block == nil || block.Type != "CERTIFICATE" {
		t.Errorf("RootCAPEM is not a PEM certificate: %q", f.RootCAPEM)
	}
	if _, err := httpClient.Get(f.JWKSURL); err == nil {
		t.Error("a client without RootCAs trusts the server")
	}

	certA := ClientCertificate(t, "client A")
	certB := ClientCertificate(t, "client B")
	clientA, clientB := f.HTTPClient(certA), f.HTTPClient(certB)
	if certThumbprint(certA) == certThumbprint(certB) {
		t.Fatal("two client certificates with one thumbprint")
	}

	for _, tc := range []struct {
		name   string
		client *http.Client
		auth   auth
		cert   tls.Certificate
	}{
		{"cert A, client_secret_basic", clientA, basic(certClient, certSecret), certA},
		{"cert A, client_secret_post", clientA, post(certClient, certSecret), certA},
		{"cert B", clientB, basic(certClient, certSecret), certB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := accessToken(t, f.tokenRequest(t, tc.client, tc.auth, ""), "Bearer")
			// The gateway introspects without a client certificate.
			body := f.introspectBoth(t, tok, certClient, "Bearer", map[string]any{"x5t#S256": certThumbprint(tc.cert)})
			t.Logf("introspection: %s", body)
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		wantError(t, f.tokenRequest(t, f.client, basic(certClient, certSecret), ""), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("client not registered for bound tokens", func(t *testing.T) {
		tok := accessToken(t, f.tokenRequest(t, clientA, basic(mcpClient, mcpSecret), ""), "Bearer")
		f.introspectBoth(t, tok, mcpClient, "Bearer", nil)
	})
	t.Run("DPoP over HTTPS", func(t *testing.T) {
		k := newDPoPKey(t, jwa.ES256)
		tok := accessToken(t, f.tokenRequest(t, clientA, basic(mcpClient, mcpSecret), k.proof(t, "POST", f.TokenURL, nil)), "DPoP")
		f.introspectBoth(t, tok, mcpClient, "DPoP", map[string]any{"jkt": k.thumbprint(t)})
	})
	t.Run("certificate and DPoP proof", func(t *testing.T) {
		// One proof-of-possession mechanism per token.
		k := newDPoPKey(t, jwa.ES256)
		wantError(t, f.tokenRequest(t, clientA, basic(certClient, certSecret), k.proof(t, "POST", f.TokenURL, nil)), http.StatusBadRequest, "invalid_request")
	})
	t.Run("launcher helpers over HTTPS", func(t *testing.T) {
		tok := f.ClientCredentialsToken(t, mcpClient, mcpSecret, scope, resource)
		checkActive(t, f.introspect(t, basic(gateway, gatewaySecret), "", tok).json(t), f.Issuer)
		f.Revoke(t, mcpClient, mcpSecret, tok)
		bound := accessToken(t, f.tokenRequest(t, clientA, basic(certClient, certSecret), ""), "Bearer")
		f.Revoke(t, certClient, certSecret, bound) // revocation needs no certificate
		for _, tk := range []string{tok, bound} {
			if m := f.introspect(t, basic(gateway, gatewaySecret), "", tk).json(t); len(m) != 1 || m["active"] != false {
				t.Errorf("after revocation: got %v, want {active:false}", m)
			}
		}
	})
}
