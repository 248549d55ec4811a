package introspect

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixedNow is the injected clock of the RFC 9701 and exchange tests.
var fixedNow = time.Unix(1750000000, 0)

func fixedClock() time.Time { return fixedNow }

const ctIntrospectionJWT = "application/token-introspection+jwt"

// rfc9701Claims is a valid RFC 9701 payload for the test client, with the
// forwarded JWT in token_introspection.jwt.
func rfc9701Claims(inner string) map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"aud": []string{"https://other.example.com", testClientID},
		"iat": fixedNow.Unix() - 5,
		"jti": "resp-1",
		"token_introspection": map[string]any{
			"active": true, "sub": "alice", "client_id": "agent", "scope": "mcp:tools",
			"iss": testIssuer, "aud": "https://mcp.example.com/mcp",
			"exp": 1750003600, "iat": 1750000000, "jwt": inner,
		},
	}
}

var introspectionTyp = map[string]any{"typ": "token-introspection+jwt"}

func TestIntrospectRFC9701(t *testing.T) {
	testKeys(t)
	jwks := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "k1", "RS256"), publicJWK(t, ecKey, "ec1", "")))
	inner := signJWT(t, "RS256", rsaKey1, "k1", map[string]any{"iss": testIssuer, "exp": 1750001800, "sub": "alice"}, nil)

	// sign builds a reply JWT from the base claims after mod.
	sign := func(mod func(c map[string]any), hdr map[string]any) string {
		c := rfc9701Claims(inner)
		if mod != nil {
			mod(c)
		}
		if hdr == nil {
			hdr = introspectionTyp
		}
		return signJWT(t, "ES256", ecKey, "ec1", c, hdr)
	}
	ti := func(c map[string]any) map[string]any { return c["token_introspection"].(map[string]any) }
	good := sign(nil, nil)

	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		jwtClaim string // "-" = none
		want     *Result
		wantErr  ErrorKind
		wantMsg  string
	}{
		{name: "happy path", status: 200, ctype: ctIntrospectionJWT, body: good, want: &Result{
			Active: true, Subject: "alice", ClientID: "agent", Scope: "mcp:tools", Issuer: testIssuer,
			Audience: []string{"https://mcp.example.com/mcp"}, ExpiresAt: time.Unix(1750003600, 0),
			IssuedAt: time.Unix(1750000000, 0), JWT: inner, JWTExpiresAt: time.Unix(1750001800, 0), MaxAge: -1,
		}},
		{name: "no jwt_claim: nothing forwarded", status: 200, ctype: ctIntrospectionJWT, body: good, jwtClaim: "-", want: &Result{
			Active: true, Subject: "alice", ClientID: "agent", Scope: "mcp:tools", Issuer: testIssuer,
			Audience: []string{"https://mcp.example.com/mcp"}, ExpiresAt: time.Unix(1750003600, 0),
			IssuedAt: time.Unix(1750000000, 0), MaxAge: -1,
		}},
		{name: "media type with parameters", status: 200, ctype: "Application/Token-Introspection+JWT; charset=utf-8", body: good},
		{name: "full media type as typ, any case", status: 200, ctype: ctIntrospectionJWT,
			body: sign(nil, map[string]any{"typ": "Application/Token-Introspection+JWT"})},
		{name: "rsa signed", status: 200, ctype: ctIntrospectionJWT,
			body: signJWT(t, "RS256", rsaKey1, "k1", rfc9701Claims(inner), introspectionTyp)},
		{name: "aud as string", status: 200, ctype: ctIntrospectionJWT, body: sign(func(c map[string]any) { c["aud"] = testClientID }, nil)},
		{name: "iat just within skew", status: 200, ctype: ctIntrospectionJWT, body: sign(func(c map[string]any) { c["iat"] = fixedNow.Unix() - 59 }, nil)},
		{name: "iat slightly ahead within skew", status: 200, ctype: ctIntrospectionJWT, body: sign(func(c map[string]any) { c["iat"] = fixedNow.Unix() + 30 }, nil)},

		{name: "active false is inactive", status: 200, ctype: ctIntrospectionJWT,
			body: sign(func(c map[string]any) { c["token_introspection"] = map[string]any{"active": false} }, nil),
			want: &Result{Active: false, MaxAge: -1}},
		{name: "active string true", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { ti(c)["active"] = "true" }, nil)},
		{name: "token_introspection missing", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { delete(c, "token_introspection"); c["active"] = true }, nil)},
		{name: "token_introspection not an object", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["token_introspection"] = `{"active":true}` }, nil)},
		{name: "jwt_claim outside token_introspection is ignored", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { delete(ti(c), "jwt"); c["jwt"] = inner }, nil)},
		{name: "forwarded member not a jws", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { ti(c)["jwt"] = testToken }, nil)},
		{name: "inner iss mismatch", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { ti(c)["iss"] = "https://evil.example.com" }, nil)},

		{name: "wrong typ", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse, body: sign(nil, map[string]any{"typ": "at+jwt"})},
		{name: "typ JWT", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse, body: sign(nil, map[string]any{"typ": "JWT"})},
		{name: "alg none", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: rawJWS(`{"alg":"none","typ":"token-introspection+jwt"}`, `{"iss":"`+testIssuer+`"}`, "c2ln")},
		{name: "HS256 with a shared secret", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: signJWT(t, "HS256", []byte(testSecret+testSecret), "k1", rfc9701Claims(inner), introspectionTyp)},
		{name: "bad signature", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: signJWT(t, "RS256", rsaKey2, "k1", rfc9701Claims(inner), introspectionTyp)},
		{name: "tampered payload", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: func() string {
				parts := strings.Split(good, ".")
				other := strings.Split(sign(func(c map[string]any) { ti(c)["sub"] = "mallory" }, nil), ".")
				return parts[0] + "." + other[1] + "." + parts[2]
			}()},
		{name: "wrong iss", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["iss"] = "https://evil.example.com" }, nil)},
		{name: "iss missing", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { delete(c, "iss") }, nil)},
		{name: "aud missing client_id", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["aud"] = []string{"someone-else"} }, nil)},
		{name: "aud absent", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { delete(c, "aud") }, nil)},
		{name: "iat too old", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["iat"] = fixedNow.Unix() - 61 }, nil)},
		{name: "iat in the future", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["iat"] = fixedNow.Unix() + 61 }, nil)},
		{name: "iat missing", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { delete(c, "iat") }, nil)},
		{name: "iat string", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["iat"] = "now" }, nil)},
		{name: "reply jwt expired", status: 200, ctype: ctIntrospectionJWT, wantErr: KindBadResponse,
			body: sign(func(c map[string]any) { c["exp"] = fixedNow.Unix() - 120 }, nil)},

		{name: "json answer to an rfc 9701 request", status: 200, ctype: "application/json;charset=UTF-8",
			body: `{"active":true,"sub":"alice"}`, wantErr: KindBadResponse, wantMsg: errMsgRFC9701AsJSON},
		{name: "application/jwt media type", status: 200, ctype: "application/jwt", body: good, wantErr: KindBadResponse},
		{name: "204", status: 204, wantErr: KindBadResponse},
		{name: "empty body", status: 200, ctype: ctIntrospectionJWT, body: "", wantErr: KindBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := withContentType(tt.ctype)
			as := newFakeAS(t, reply(tt.status, tt.body, hdr...))
			v := newTestVerifier(t, jwks.URL)
			c := newTestClient(t, as.URL, func(c *Config) {
				c.Format, c.Verifier, c.Issuer, c.Now, c.JWTClaim = FormatRFC9701, v, testIssuer, fixedClock, "jwt"
				if tt.jwtClaim == "-" {
					c.JWTClaim = ""
				}
			})
			res, err := c.Introspect(context.Background(), testToken, "")
			if got := as.lastRequest(t).Header.Get("Accept"); got != ctIntrospectionJWT {
				t.Fatalf("Accept = %q", got)
			}
			if tt.wantErr != 0 {
				if res != nil {
					t.Fatalf("result with error: %+v", res)
				}
				wantKind(t, err, tt.wantErr, tt.status, tt.body, inner)
				if tt.wantMsg != "" && err.Error() != tt.wantMsg {
					t.Fatalf("message = %q, want %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Introspect: %v", err)
			}
			if res.Active && res.JWT == tt.body {
				t.Fatal("the RFC 9701 response JWT became Result.JWT")
			}
			if tt.want != nil {
				if !reflect.DeepEqual(res, tt.want) {
					t.Fatalf("result\n got %+v\nwant %+v", res, tt.want)
				}
				return
			}
			if !res.Active || res.JWT != inner {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestRFC9701IATSkewConfigurable(t *testing.T) {
	testKeys(t)
	jwks := newJWKSServer(t, keySetJSON(t, publicJWK(t, ecKey, "ec1", "")))
	claims := rfc9701Claims("")
	delete(claims["token_introspection"].(map[string]any), "jwt")
	claims["iat"] = fixedNow.Unix() - 200
	body := signJWT(t, "ES256", ecKey, "ec1", claims, introspectionTyp)
	as := newFakeAS(t, reply(200, body, "Content-Type", ctIntrospectionJWT))
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{{0, false}, {199 * time.Second, false}, {201 * time.Second, true}} {
		c := newTestClient(t, as.URL, func(c *Config) {
			c.Format, c.Verifier, c.Issuer, c.Now, c.MaxIATSkew = FormatRFC9701, newTestVerifier(t, jwks.URL), testIssuer, fixedClock, tc.skew
		})
		res, err := c.Introspect(context.Background(), testToken, "")
		if tc.ok && (err != nil || !res.Active || res.JWT != "") {
			t.Fatalf("skew %s: res=%+v err=%v", tc.skew, res, err)
		}
		if !tc.ok {
			wantKind(t, err, KindBadResponse, 200, body)
		}
	}
}

// Leeway widens the iat window and lets a reply whose nbf is slightly
// ahead through; it never keeps an expired reply alive.
func TestRFC9701Leeway(t *testing.T) {
	testKeys(t)
	jwks := newJWKSServer(t, keySetJSON(t, publicJWK(t, ecKey, "ec1", "")))
	for _, tc := range []struct {
		name   string
		change func(c map[string]any)
		leeway time.Duration
		ok     bool
	}{
		{"iat 70s old, no leeway", func(c map[string]any) { c["iat"] = fixedNow.Unix() - 70 }, 0, false},
		{"iat 70s old, leeway 15s", func(c map[string]any) { c["iat"] = fixedNow.Unix() - 70 }, 15 * time.Second, true},
		{"iat 70s ahead, leeway 15s", func(c map[string]any) { c["iat"] = fixedNow.Unix() + 70 }, 15 * time.Second, true},
		{"nbf 10s ahead, no leeway", func(c map[string]any) { c["nbf"] = fixedNow.Unix() + 10 }, 0, false},
		{"nbf 10s ahead, leeway 15s", func(c map[string]any) { c["nbf"] = fixedNow.Unix() + 10 }, 15 * time.Second, true},
		{"exp 1s ago, leeway 5m", func(c map[string]any) { c["exp"] = fixedNow.Unix() - 1 }, 5 * time.Minute, false},
		{"exp now, leeway 5m", func(c map[string]any) { c["exp"] = fixedNow.Unix() }, 5 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := rfc9701Claims("")
			delete(claims["token_introspection"].(map[string]any), "jwt")
			tc.change(claims)
			body := signJWT(t, "ES256", ecKey, "ec1", claims, introspectionTyp)
			as := newFakeAS(t, reply(200, body, "Content-Type", ctIntrospectionJWT))
			c := newTestClient(t, as.URL, func(c *Config) {
				c.Format, c.Verifier, c.Issuer, c.Now, c.Leeway = FormatRFC9701, newTestVerifier(t, jwks.URL), testIssuer, fixedClock, tc.leeway
			})
			res, err := c.Introspect(context.Background(), testToken, "")
			if tc.ok && (err != nil || !res.Active) {
				t.Fatalf("res=%+v err=%v; want active", res, err)
			}
			if !tc.ok {
				wantKind(t, err, KindBadResponse, 200, body)
			}
		})
	}
}

func TestRFC9701Config(t *testing.T) {
	testKeys(t)
	v := newTestVerifier(t, "https://as.example.com/jwks")
	base := Config{Endpoint: "https://as.example.com/introspect", ClientID: "gw", ClientSecret: testSecret, Format: FormatRFC9701}
	tests := []configCase[Config]{
		{"complete", func(c *Config) { c.Verifier, c.Issuer = v, testIssuer }, ""},
		{"with jwt_claim", func(c *Config) { c.Verifier, c.Issuer, c.JWTClaim = v, testIssuer, "jwt" }, ""},
		{"no verifier", func(c *Config) { c.Issuer = testIssuer }, "needs the as jwks"},
		{"no issuer", func(c *Config) { c.Verifier = v }, "needs the issuer"},
		{"negative skew", func(c *Config) { c.Verifier, c.Issuer, c.MaxIATSkew = v, testIssuer, -time.Second }, "max_iat_skew must not be negative"},
		{"negative leeway", func(c *Config) { c.Verifier, c.Issuer, c.Leeway = v, testIssuer, -time.Second }, "leeway must not be negative"},
	}
	runConfigCases(t, base, tests, New, func(t *testing.T, c *Client) {
		if c.accept != ctIntrospectionJWT {
			t.Fatalf("accept = %q", c.accept)
		}
	}, nil)
}

// A JSON reply without jwt_claim decides and reports claims, and forwards
// nothing: the caller gets the JWT elsewhere.
func TestIntrospectJSONWithoutJWTClaim(t *testing.T) {
	as := newFakeAS(t, reply(200, `{"active":true,"sub":"alice","exp":2000000000,"jwt":"x.y.z"}`, "Content-Type", "application/json"))
	c := newTestClient(t, as.URL, func(c *Config) { c.Format = FormatJSON })
	res, err := c.Introspect(context.Background(), testToken, "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{Active: true, Subject: "alice", ExpiresAt: time.Unix(2000000000, 0), MaxAge: -1}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("result\n got %+v\nwant %+v", res, want)
	}
	if got := as.lastRequest(t).Header.Get("Accept"); got != "application/json" {
		t.Fatalf("Accept = %q", got)
	}
}
