package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testResource = "https://mcp.example.com/mcp"

// exchangeReply is a JSON token exchange response.
func exchangeReply(members map[string]any) string {
	b, _ := json.Marshal(members)
	return string(b)
}

func newTestExchanger(t *testing.T, endpoint string, mod func(*ExchangeConfig)) *Exchanger {
	t.Helper()
	cfg := ExchangeConfig{Endpoint: endpoint, ClientID: testClientID, ClientSecret: testSecret, Now: fixedClock}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewExchanger(cfg)
	if err != nil {
		t.Fatalf("NewExchanger: %v", err)
	}
	t.Cleanup(e.CloseIdleConnections)
	return e
}

func TestExchangeRequest(t *testing.T) {
	testKeys(t)
	jwt := signJWT(t, "ES256", ecKey, "", map[string]any{"exp": fixedNow.Unix() + 600}, nil)
	as := newFakeAS(t, reply(200, exchangeReply(map[string]any{
		"access_token": jwt, "issued_token_type": TokenTypeJWT, "token_type": "Bearer",
	}), "Content-Type", "application/json"))
	e := newTestExchanger(t, as.URL+"/oauth/token", func(c *ExchangeConfig) {
		c.Resource, c.Audience, c.Scope = testResource, "mcp-api", "mcp:tools mcp:read"
	})
	subject := testToken + "+/= &x"
	if _, err := e.Exchange(context.Background(), subject, validTP); err != nil {
		t.Fatal(err)
	}
	r := as.lastRequest(t)
	if r.Method != http.MethodPost || r.Path != "/oauth/token" {
		t.Fatalf("got %s %s", r.Method, r.Path)
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		r.Header.Get("Traceparent") != validTP {
		t.Fatalf("headers %v", r.Header)
	}
	user, pass, ok := parseBasic(r.Header.Get("Authorization"))
	if !ok || user != testClientID || pass != url.QueryEscape(testSecret) {
		t.Fatalf("Authorization = %q", r.Header.Get("Authorization"))
	}
	form, err := url.ParseQuery(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {subject},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"resource":             {testResource},
		"audience":             {"mcp-api"},
		"scope":                {"mcp:tools mcp:read"},
	}
	if !reflect.DeepEqual(form, want) {
		t.Fatalf("form\n got %v\nwant %v", form, want)
	}

	// Optional parameters are omitted when unset; client_secret_post.
	e = newTestExchanger(t, as.URL, func(c *ExchangeConfig) { c.ClientAuth = ClientSecretPost })
	if _, err := e.Exchange(context.Background(), testToken, "not-a-traceparent"); err != nil {
		t.Fatal(err)
	}
	r = as.lastRequest(t)
	form, _ = url.ParseQuery(r.Body)
	want = url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {testToken},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"client_id":            {testClientID},
		"client_secret":        {testSecret},
	}
	if !reflect.DeepEqual(form, want) || r.Header.Get("Authorization") != "" || r.Header.Get("Traceparent") != "" {
		t.Fatalf("form %v, headers %v", form, r.Header)
	}
}

// The token exchange forwards the same rebuilt traceparent as
// introspection: a later version's trailing fields never reach the AS.
func TestExchangeTraceparentRebuilt(t *testing.T) {
	testKeys(t)
	jwt := signJWT(t, "ES256", ecKey, "", map[string]any{"exp": fixedNow.Unix() + 600}, nil)
	as := newFakeAS(t, reply(200, exchangeReply(map[string]any{
		"access_token": jwt, "issued_token_type": TokenTypeJWT, "token_type": "Bearer",
	}), "Content-Type", "application/json"))
	e := newTestExchanger(t, as.URL, nil)
	in := "01" + validTP[2:] + "-" + testToken
	if _, err := e.Exchange(context.Background(), testToken, in); err != nil {
		t.Fatal(err)
	}
	if got := as.lastRequest(t).Header.Values("Traceparent"); len(got) != 1 || got[0] != validTP {
		t.Fatalf("traceparent = %q, want %q", got, validTP)
	}
}

func TestExchangeResponses(t *testing.T) {
	testKeys(t)
	jwks := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "k1", "RS256")))
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": testIssuer, "sub": "alice", "client_id": "agent", "scope": "mcp:tools", "aud": testResource,
			"exp": fixedNow.Unix() + 600, "nbf": fixedNow.Unix() - 1, "iat": fixedNow.Unix() - 1, "jti": "x1",
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	good := signJWT(t, "RS256", rsaKey1, "k1", claims(nil), nil)
	noExp := signJWT(t, "RS256", rsaKey1, "k1", claims(func(c map[string]any) { delete(c, "exp") }), nil)
	expired := signJWT(t, "RS256", rsaKey1, "k1", claims(func(c map[string]any) { c["exp"] = fixedNow.Unix() - 1 }), nil)
	foreign := signJWT(t, "RS256", rsaKey1, "k1", claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), nil)
	forged := signJWT(t, "RS256", rsaKey2, "k1", claims(nil), nil)
	introspection := signJWT(t, "RS256", rsaKey1, "k1", claims(nil), introspectionTyp)
	ok := func(mod func(map[string]any)) string {
		m := map[string]any{"access_token": good, "issued_token_type": TokenTypeJWT, "token_type": "Bearer", "expires_in": 300}
		if mod != nil {
			mod(m)
		}
		return exchangeReply(m)
	}
	const ct = "application/json"
	at := func(d time.Duration) time.Time { return fixedNow.Add(d) }

	tests := []struct {
		name      string
		status    int
		ctype     string
		body      string
		headers   []string
		requested string
		noVerify  bool
		wantExp   time.Time
		wantErr   ErrorKind
	}{
		{name: "expires_in earlier than exp", status: 200, ctype: ct, body: ok(nil), wantExp: at(300 * time.Second)},
		{name: "exp earlier than expires_in", status: 200, ctype: ct, body: ok(func(m map[string]any) { m["expires_in"] = 900 }), wantExp: at(600 * time.Second)},
		{name: "no expires_in", status: 200, ctype: ct, body: ok(func(m map[string]any) { delete(m, "expires_in") }), wantExp: at(600 * time.Second)},
		{name: "fractional expires_in", status: 200, ctype: ct, body: ok(func(m map[string]any) { m["expires_in"] = 1.5 }), wantExp: at(1500 * time.Millisecond)},
		{name: "neither", status: 200, ctype: ct, body: ok(func(m map[string]any) { delete(m, "expires_in"); m["access_token"] = noExp })},
		{name: "charset and N_A token type", status: 200, ctype: "application/json; charset=utf-8", body: ok(func(m map[string]any) { m["token_type"] = "N_A" }), wantExp: at(300 * time.Second)},
		{name: "access_token requested, jwt issued", status: 200, ctype: ct, requested: TokenTypeAccessToken, body: ok(nil), wantExp: at(300 * time.Second)},
		{name: "access_token requested and issued", status: 200, ctype: ct, requested: TokenTypeAccessToken,
			body: ok(func(m map[string]any) { m["issued_token_type"] = TokenTypeAccessToken }), wantExp: at(300 * time.Second)},

		{name: "issued_token_type mismatch", status: 200, ctype: ct, wantErr: KindBadResponse,
			body: ok(func(m map[string]any) { m["issued_token_type"] = TokenTypeAccessToken })},
		{name: "issued_token_type missing", status: 200, ctype: ct, wantErr: KindBadResponse,
			body: ok(func(m map[string]any) { delete(m, "issued_token_type") })},
		{name: "issued id_token", status: 200, ctype: ct, requested: TokenTypeAccessToken, wantErr: KindBadResponse,
			body: ok(func(m map[string]any) { m["issued_token_type"] = "urn:ietf:params:oauth:token-type:id_token" })},
		{name: "access_token not a jws", status: 200, ctype: ct, wantErr: KindBadResponse,
			body: ok(func(m map[string]any) { m["access_token"] = "opaque-issued-token" })},
		{name: "access_token missing", status: 200, ctype: ct, wantErr: KindBadResponse,
			body: ok(func(m map[string]any) { delete(m, "access_token") })},
		{name: "access_token alg none", status: 200, ctype: ct, wantErr: KindBadResponse, noVerify: true,
			body: ok(func(m map[string]any) { m["access_token"] = rawJWS(`{"alg":"none"}`, `{"sub":"a"}`, "c2ln") })},
		{name: "access_token is an introspection response", status: 200, ctype: ct, wantErr: KindBadResponse, noVerify: true,
			body: ok(func(m map[string]any) { m["access_token"] = introspection })},
		{name: "forged jwt", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["access_token"] = forged })},
		{name: "issuer mismatch", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["access_token"] = foreign })},
		{name: "already expired", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["access_token"] = expired })},
		{name: "expires_in 0", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["expires_in"] = 0 })},
		{name: "expires_in string", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["expires_in"] = "300" })},
		{name: "expires_in negative", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["expires_in"] = -5 })},
		{name: "DPoP token type", status: 200, ctype: ct, wantErr: KindBadResponse, body: ok(func(m map[string]any) { m["token_type"] = "DPoP" })},
		{name: "not json", status: 200, ctype: "text/html", body: ok(nil), wantErr: KindBadResponse},
		{name: "json array", status: 200, ctype: ct, body: "[]", wantErr: KindBadResponse},

		{name: "400 invalid_request", status: 400, ctype: ct, body: `{"error":"invalid_request","error_description":"subject_token ` + testToken + ` is invalid"}`, wantErr: KindRejected},
		{name: "400 invalid_target", status: 400, ctype: ct, body: `{"error":"invalid_target"}`, wantErr: KindRejected},
		{name: "400 invalid_grant", status: 400, ctype: ct, body: `{"error":"invalid_grant"}`, wantErr: KindRejected},
		{name: "400 unsupported_grant_type", status: 400, ctype: ct, body: `{"error":"unsupported_grant_type"}`, wantErr: KindBadResponse},
		{name: "400 unknown code", status: 400, ctype: ct, body: `{"error":"` + testSecret + `"}`, wantErr: KindBadResponse},
		{name: "400 html", status: 400, ctype: "text/html", body: `invalid_request`, wantErr: KindBadResponse},
		{name: "400 not an object", status: 400, ctype: ct, body: `"invalid_request"`, wantErr: KindBadResponse},
		{name: "401 invalid_client", status: 401, ctype: ct, body: `{"error":"invalid_client"}`, headers: []string{"WWW-Authenticate", "Basic"}, wantErr: KindBadResponse},
		{name: "403", status: 403, ctype: ct, body: `{"error":"invalid_request"}`, wantErr: KindBadResponse},
		{name: "404", status: 404, body: "not found", wantErr: KindBadResponse},
		{name: "500", status: 500, body: "boom " + testSecret, wantErr: KindBadResponse},
		{name: "302", status: 302, headers: []string{"Location", "https://elsewhere.example.com/"}, wantErr: KindBadResponse},
		{name: "503", status: 503, headers: []string{"Retry-After", "4"}, wantErr: KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := withContentType(tt.ctype, tt.headers...)
			as := newFakeAS(t, reply(tt.status, tt.body, hdr...))
			e := newTestExchanger(t, as.URL, func(c *ExchangeConfig) {
				c.Issuer, c.Resource, c.RequestedTokenType, c.MaxBodyBytes = testIssuer, testResource, tt.requested, 4096
				if !tt.noVerify {
					c.Verifier = newTestVerifier(t, jwks.URL)
				}
			})
			out, err := e.Exchange(context.Background(), testToken, "")
			if tt.wantErr != 0 {
				if out != nil {
					t.Fatalf("result with error: %+v", out)
				}
				ee := wantKind(t, err, tt.wantErr, tt.status, good, forged, tt.body)
				if tt.status == 503 && ee.RetryAfter != 4*time.Second {
					t.Fatalf("RetryAfter = %v", ee.RetryAfter)
				}
				if n := as.hits.Load(); n != 1 {
					t.Fatalf("AS hit %d times", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !out.ExpiresAt.Equal(tt.wantExp) {
				t.Fatalf("ExpiresAt = %v, want %v", out.ExpiresAt, tt.wantExp)
			}
			if out.Claims == nil || out.JWT != out.Claims.JWT || !out.Claims.Active {
				t.Fatalf("claims %+v", out.Claims)
			}
			if out.JWT == good {
				want := &Result{
					Active: true, Subject: "alice", ClientID: "agent", Scope: "mcp:tools", Issuer: testIssuer,
					Audience: []string{testResource}, ExpiresAt: at(600 * time.Second), NotBefore: at(-time.Second),
					IssuedAt: at(-time.Second), JWT: good, JWTExpiresAt: at(600 * time.Second), MaxAge: -1,
				}
				if !reflect.DeepEqual(out.Claims, want) {
					t.Fatalf("claims\n got %+v\nwant %+v", out.Claims, want)
				}
			}
		})
	}
}

func TestExchangeTransport(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		as := newFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		e := newTestExchanger(t, as.URL, func(c *ExchangeConfig) { c.Timeout = 100 * time.Millisecond })
		_, err := e.Exchange(context.Background(), testToken, "")
		wantKind(t, err, KindUnavailable, 0)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded: %v", err)
		}
	})
	t.Run("connection refused is retried once", func(t *testing.T) {
		as := newFakeAS(t, reply(204, ""))
		addr := strings.TrimPrefix(as.URL, "http://")
		as.Close()
		var dials atomic.Int32
		e := newTestExchanger(t, "http://"+addr+"/token", func(c *ExchangeConfig) { c.HTTPClient = countingClient(&dials) })
		_, err := e.Exchange(context.Background(), testToken, "")
		wantKind(t, err, KindUnavailable, 0)
		if n := dials.Load(); n != 2 {
			t.Fatalf("dialed %d times, want 2", n)
		}
	})
	t.Run("empty subject token", func(t *testing.T) {
		as := newFakeAS(t, reply(500, ""))
		e := newTestExchanger(t, as.URL, nil)
		if _, err := e.Exchange(context.Background(), "", ""); err == nil || as.hits.Load() != 0 {
			t.Fatal("empty subject token must fail locally")
		}
	})
}

func TestExchangePrivateKeyJWT(t *testing.T) {
	testKeys(t)
	jwt := signJWT(t, "ES256", ecKey, "", map[string]any{"exp": fixedNow.Unix() + 60}, nil)
	as := newAssertionAS(t, rsaKey1.Public(), reply(200, exchangeReply(map[string]any{
		"access_token": jwt, "issued_token_type": TokenTypeJWT, "token_type": "Bearer",
	}), "Content-Type", "application/json"))
	e := newTestExchanger(t, as.URL+"/token", func(c *ExchangeConfig) {
		c.ClientAuth, c.ClientSecret, c.AssertionKey = PrivateKeyJWT, "", privateJWK(t, rsaKey1, "", "")
	})
	out, err := e.Exchange(context.Background(), testToken, "")
	if err != nil || out.JWT != jwt {
		t.Fatalf("out=%+v err=%v", out, err)
	}
	as.mu.Lock()
	seen := as.seen
	as.mu.Unlock()
	if len(seen) != 1 || seen[0].claims["aud"] != as.URL+"/token" {
		t.Fatalf("assertions seen: %+v", seen)
	}
	form, _ := url.ParseQuery(as.lastRequest(t).Body)
	if form.Has("client_secret") || form.Get("subject_token") != testToken {
		t.Fatalf("form %v", form)
	}
}

func TestNewExchangerValidation(t *testing.T) {
	base := ExchangeConfig{Endpoint: "https://as.example.com/token", ClientID: "gw", ClientSecret: testSecret}
	tests := []configCase[ExchangeConfig]{
		{"valid", func(*ExchangeConfig) {}, ""},
		{"no endpoint", func(c *ExchangeConfig) { c.Endpoint = "" }, "token exchange endpoint is required"},
		{"http endpoint", func(c *ExchangeConfig) { c.Endpoint = "http://as.example.com/token" }, "token exchange endpoint: http is only allowed"},
		{"no client id", func(c *ExchangeConfig) { c.ClientID = "" }, "client_id is required"},
		{"no secret", func(c *ExchangeConfig) { c.ClientSecret = "" }, "client_secret is required"},
		{"requested id_token", func(c *ExchangeConfig) { c.RequestedTokenType = "urn:ietf:params:oauth:token-type:id_token" }, "requested_token_type"},
		{"requested access_token", func(c *ExchangeConfig) { c.RequestedTokenType = TokenTypeAccessToken }, ""},
		{"relative resource", func(c *ExchangeConfig) { c.Resource = "/mcp" }, "resource must be an absolute uri"},
		{"negative timeout", func(c *ExchangeConfig) { c.Timeout = -1 }, "timeout must not be negative"},
		{"negative body cap", func(c *ExchangeConfig) { c.MaxBodyBytes = -1 }, "max_body_bytes must not be negative"},
		{"private_key_jwt without key", func(c *ExchangeConfig) { c.ClientAuth, c.ClientSecret = PrivateKeyJWT, "" }, "needs an assertion key"},
	}
	runConfigCases(t, base, tests, NewExchanger, func(t *testing.T, e *Exchanger) {
		if e.requested == "" || e.timeout != DefaultTimeout || e.maxBody != DefaultMaxBodyBytes {
			t.Fatalf("defaults: %q %s %d", e.requested, e.timeout, e.maxBody)
		}
	}, func(t *testing.T, err error) { assertNoLeak(t, err) })
}

func TestErrorKindString(t *testing.T) {
	for k, want := range map[ErrorKind]string{KindUnavailable: "unavailable", KindBadResponse: "bad_response", KindRejected: "rejected", 99: "kind(99)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}
