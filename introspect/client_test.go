package introspect

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestRequestShape(t *testing.T) {
	tests := []struct {
		name       string
		auth       ClientAuth
		format     Format
		id, secret string
		wantAccept string
	}{
		{"basic jwt", "", FormatJWT, testClientID, testSecret, "application/jwt"},
		{"basic json", ClientSecretBasic, FormatJSON, testClientID, testSecret, "application/json"},
		{"post jwt", ClientSecretPost, FormatJWT, testClientID, testSecret, "application/jwt"},
		{"basic special chars", ClientSecretBasic, FormatJWT, "my client:1", "p@ss:w/rd+ " + testSecret, "application/jwt"},
		{"post special chars", ClientSecretPost, FormatJWT, "my client:1", "p@ss:w/rd+ " + testSecret, "application/jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, reply(http.StatusNoContent, ""))
			c, err := New(Config{
				Endpoint: as.URL + "/oauth/introspect?realm=x", ClientID: tt.id, ClientSecret: tt.secret,
				ClientAuth: tt.auth, Format: tt.format, JWTClaim: map[Format]string{FormatJSON: "jwt"}[tt.format],
			})
			if err != nil {
				t.Fatal(err)
			}
			// A token with characters that must be form-encoded.
			token := testToken + "+/=~ &x"
			_, _ = c.Introspect(context.Background(), token, validTP)
			r := as.lastRequest(t)

			if r.Method != http.MethodPost || r.Path != "/oauth/introspect" {
				t.Fatalf("got %s %s", r.Method, r.Path)
			}
			h := r.Header
			if got := h.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := h.Get("Accept"); got != tt.wantAccept {
				t.Errorf("Accept = %q, want %q", got, tt.wantAccept)
			}
			if got := h.Get("User-Agent"); got != "caddy-phantom-token" {
				t.Errorf("User-Agent = %q", got)
			}
			if got := h.Get("Traceparent"); got != validTP {
				t.Errorf("traceparent = %q", got)
			}
			// Nothing else: the request is built from scratch.
			for name := range h {
				switch name {
				case "Content-Type", "Accept", "User-Agent", "Traceparent", "Authorization", "Content-Length", "Accept-Encoding":
				default:
					t.Errorf("unexpected header %s: %q", name, h.Get(name))
				}
			}

			form, err := url.ParseQuery(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
			if tt.auth == ClientSecretPost {
				want.Set("client_id", tt.id)
				want.Set("client_secret", tt.secret)
				if h.Get("Authorization") != "" {
					t.Error("client_secret_post must not send Authorization")
				}
			} else {
				user, pass, ok := parseBasic(h.Get("Authorization"))
				if !ok {
					t.Fatalf("Authorization = %q, want Basic", h.Get("Authorization"))
				}
				// RFC 6749 §2.3.1: each part form-urlencoded.
				if gotID, _ := url.QueryUnescape(user); gotID != tt.id {
					t.Errorf("basic user = %q -> %q, want %q", user, gotID, tt.id)
				}
				if gotSecret, _ := url.QueryUnescape(pass); gotSecret != tt.secret {
					t.Errorf("basic password decodes to %q, want %q", gotSecret, tt.secret)
				}
				if user != url.QueryEscape(tt.id) {
					t.Errorf("basic user = %q, want form-encoded %q", user, url.QueryEscape(tt.id))
				}
			}
			if !reflect.DeepEqual(form, want) {
				t.Errorf("form = %v, want %v", form, want)
			}
			if r.Body != want.Encode() {
				t.Errorf("body = %q, want %q", r.Body, want.Encode())
			}
		})
	}
}

func parseBasic(h string) (user, pass string, ok bool) {
	enc, found := strings.CutPrefix(h, "Basic ")
	if !found {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(b), ":")
	return user, pass, ok
}

// Only a rebuilt version-00 traceparent reaches the AS: later versions are
// read as the spec asks (the first four fields) and their trailing fields,
// which are client text, are dropped.
func TestTraceparentForwarding(t *testing.T) {
	const ids = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
	tests := []struct {
		name, in, want string // want "" means not forwarded
	}{
		{"valid", validTP, validTP},
		{"future version with extra field", "01-" + ids + "-01-extra", "00-" + ids + "-01"},
		{"future version smuggling a token", "cc-" + ids + "-03-" + testToken + "-x", "00-" + ids + "-03"},
		{"future version without extra field", "02-" + ids + "-00", "00-" + ids + "-00"},
		{"future version, non-ascii suffix", "01-" + ids + "-01-\u00e9\r\nX: y", "00-" + ids + "-01"},
		{"future version, no dash after flags", "01-" + ids + "-01x", ""},
		{"empty", "", ""},
		{"uppercase hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},
		{"version ff", "ff-" + ids + "-01", ""},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""},
		{"v00 with trailing data", validTP + "-" + testToken, ""},
		{"too short", "00-4bf92f3577b34da6-00f067aa0ba902b7-01", ""},
		{"token smuggling", "Bearer " + testToken, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, reply(http.StatusNoContent, ""))
			c := newTestClient(t, as.URL, nil)
			if _, err := c.Introspect(context.Background(), testToken, tt.in); err != nil {
				t.Fatal(err)
			}
			got, present := as.lastRequest(t).Header["Traceparent"]
			if tt.want != "" && (!present || len(got) != 1 || got[0] != tt.want) {
				t.Fatalf("traceparent = %q, want %q", got, tt.want)
			}
			if tt.want == "" && present {
				t.Fatalf("traceparent %q forwarded, want dropped", got)
			}
		})
	}
}

// jwtClaims is a full set of claims as Curity puts them in the JWT.
func jwtClaims() map[string]any {
	return map[string]any{
		"sub": "alice", "client_id": "agent", "scope": "mcp:tools mcp:read", "iss": testIssuer,
		"aud": []string{"https://mcp.example.com/mcp"}, "exp": 2000000000, "nbf": 1700000000, "iat": 1700000000.5,
	}
}

func TestIntrospectJWTFormat(t *testing.T) {
	testKeys(t)
	good := signJWT(t, "RS256", rsaKey1, "rsa1", jwtClaims(), nil)
	withClaims := func(mod func(map[string]any)) string {
		c := jwtClaims()
		mod(c)
		return signJWT(t, "RS256", rsaKey1, "rsa1", c, nil)
	}
	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		issuer  string
		maxBody int64
		want    *Result // nil with wantErr
		wantErr ErrorKind
	}{
		{name: "204 inactive", status: 204, want: &Result{Active: false, MaxAge: -1}},
		{name: "204 inactive with content type", status: 204, ctype: "application/jwt", want: &Result{Active: false, MaxAge: -1}},
		{name: "200 jwt", status: 200, ctype: "application/jwt", body: good, want: &Result{
			Active: true, Subject: "alice", ClientID: "agent", Scope: "mcp:tools mcp:read", Issuer: testIssuer,
			Audience: []string{"https://mcp.example.com/mcp"}, ExpiresAt: time.Unix(2000000000, 0),
			NotBefore: time.Unix(1700000000, 0), IssuedAt: time.Unix(1700000000, 5e8), JWT: good,
			JWTExpiresAt: time.Unix(2000000000, 0), MaxAge: -1,
		}},
		{name: "media type params and case", status: 200, ctype: "Application/JWT; charset=utf-8", body: good},
		{name: "at+jwt media type", status: 200, ctype: "application/at+jwt", body: good},
		{name: "surrounding whitespace trimmed", status: 200, ctype: "application/jwt", body: "\r\n " + good + "\n"},
		{name: "issuer matches", status: 200, ctype: "application/jwt", body: good, issuer: testIssuer},
		{name: "issuer mismatch", status: 200, ctype: "application/jwt", body: good, issuer: "https://other.example.com", wantErr: KindBadResponse},
		{name: "issuer required but absent", status: 200, ctype: "application/jwt", issuer: testIssuer, wantErr: KindBadResponse,
			body: withClaims(func(c map[string]any) { delete(c, "iss") })},
		{name: "empty 200", status: 200, ctype: "application/jwt", body: "", wantErr: KindBadResponse},
		{name: "whitespace 200", status: 200, ctype: "application/jwt", body: " \n", wantErr: KindBadResponse},
		{name: "text/html", status: 200, ctype: "text/html", body: good, wantErr: KindBadResponse},
		{name: "json in jwt mode", status: 200, ctype: "application/json", body: `{"active":true}`, wantErr: KindBadResponse},
		{name: "no content type", status: 200, body: good, wantErr: KindBadResponse},
		{name: "bad content type", status: 200, ctype: "application/jwt; =", body: good, wantErr: KindBadResponse},
		{name: "two segments", status: 200, ctype: "application/jwt", body: good[:strings.LastIndex(good, ".")], wantErr: KindBadResponse},
		{name: "four segments", status: 200, ctype: "application/jwt", body: good + ".abcd", wantErr: KindBadResponse},
		{name: "empty signature", status: 200, ctype: "application/jwt", body: good[:strings.LastIndex(good, ".")+1], wantErr: KindBadResponse},
		{name: "opaque string", status: 200, ctype: "application/jwt", body: testToken, wantErr: KindBadResponse},
		{name: "alg none", status: 200, ctype: "application/jwt", body: rawJWS(`{"alg":"none"}`, `{"sub":"a"}`, "c2ln"), wantErr: KindBadResponse},
		{name: "no alg", status: 200, ctype: "application/jwt", body: rawJWS(`{"typ":"JWT"}`, `{"sub":"a"}`, "c2ln"), wantErr: KindBadResponse},
		{name: "header not json", status: 200, ctype: "application/jwt", body: rawJWS(`not json`, `{"sub":"a"}`, "c2ln"), wantErr: KindBadResponse},
		{name: "payload array", status: 200, ctype: "application/jwt", body: rawJWS(`{"alg":"RS256"}`, `["a"]`, "c2ln"), wantErr: KindBadResponse},
		{name: "payload null", status: 200, ctype: "application/jwt", body: rawJWS(`{"alg":"RS256"}`, `null`, "c2ln"), wantErr: KindBadResponse},
		{name: "crit header", status: 200, ctype: "application/jwt", body: rawJWS(`{"alg":"RS256","crit":["x"],"x":1}`, `{}`, "c2ln"), wantErr: KindBadResponse},
		{name: "rfc9701 response is not forwarded", status: 200, ctype: "application/jwt", wantErr: KindBadResponse,
			body: signJWT(t, "RS256", rsaKey1, "rsa1", map[string]any{"token_introspection": map[string]any{"active": true}}, map[string]any{"typ": "token-introspection+jwt"})},
		{name: "exp as string", status: 200, ctype: "application/jwt", wantErr: KindBadResponse,
			body: withClaims(func(c map[string]any) { c["exp"] = "2000000000" })},
		{name: "exp float", status: 200, ctype: "application/jwt",
			body: withClaims(func(c map[string]any) { c["exp"] = 2000000000.25 })},
		{name: "sub not a string", status: 200, ctype: "application/jwt", wantErr: KindBadResponse,
			body: withClaims(func(c map[string]any) { c["sub"] = 42 })},
		{name: "oversized", status: 200, ctype: "application/jwt", body: good, maxBody: int64(len(good) - 1), wantErr: KindBadResponse},
		{name: "exactly at cap", status: 200, ctype: "application/jwt", body: good, maxBody: int64(len(good))},
		{name: "201 is not 200", status: 201, ctype: "application/jwt", body: good, wantErr: KindBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := withContentType(tt.ctype)
			as := newFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype == "" {
					w.Header()["Content-Type"] = nil // suppress sniffing
				}
				reply(tt.status, tt.body, hdr...)(w, r)
			})
			c := newTestClient(t, as.URL, func(c *Config) { c.Issuer = tt.issuer; c.MaxBodyBytes = tt.maxBody })
			res, err := c.Introspect(context.Background(), testToken, "")
			if tt.wantErr != 0 {
				e := wantKind(t, err, tt.wantErr, tt.status, tt.body, good)
				if res != nil {
					t.Fatalf("result with error: %+v", res)
				}
				_ = e
				return
			}
			if err != nil {
				t.Fatalf("Introspect: %v", err)
			}
			if tt.want != nil {
				if !reflect.DeepEqual(res, tt.want) {
					t.Fatalf("result\n got %+v\nwant %+v", res, tt.want)
				}
				return
			}
			if !res.Active || res.JWT != strings.TrimSpace(tt.body) || res.JWTExpiresAt != res.ExpiresAt || res.ExpiresAt.IsZero() {
				t.Fatalf("unexpected result %+v", res)
			}
		})
	}
}

func TestIntrospectJSONFormat(t *testing.T) {
	testKeys(t)
	forwarded := signJWT(t, "RS256", rsaKey1, "rsa1", map[string]any{"iss": testIssuer, "exp": 1900000000, "sub": "alice"}, nil)
	foreignIss := signJWT(t, "RS256", rsaKey1, "rsa1", map[string]any{"iss": "https://evil.example.com", "exp": 1900000000}, nil)
	badExp := signJWT(t, "RS256", rsaKey1, "rsa1", map[string]any{"iss": testIssuer, "exp": "soon"}, nil)
	noExp := signJWT(t, "RS256", rsaKey1, "rsa1", map[string]any{"iss": testIssuer}, nil)
	obj := func(members string) string {
		return `{"active":true,"phantom_token":"` + forwarded + `"` + members + `}`
	}
	const json = "application/json"

	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		issuer  string
		want    *Result
		check   func(t *testing.T, r *Result)
		wantErr ErrorKind
	}{
		{name: "active with claims", status: 200, ctype: json,
			body: obj(`,"sub":"alice","client_id":"agent","scope":"a b","iss":"` + testIssuer + `","aud":"https://mcp.example.com/mcp","exp":2000000000,"nbf":1700000000,"iat":1700000000,"token_type":"Bearer"`),
			want: &Result{Active: true, Subject: "alice", ClientID: "agent", Scope: "a b", Issuer: testIssuer,
				Audience: []string{"https://mcp.example.com/mcp"}, ExpiresAt: time.Unix(2000000000, 0),
				NotBefore: time.Unix(1700000000, 0), IssuedAt: time.Unix(1700000000, 0),
				JWT: forwarded, JWTExpiresAt: time.Unix(1900000000, 0), MaxAge: -1, TokenType: "Bearer"}},
		{name: "DPoP-bound", status: 200, ctype: json, body: obj(`,"token_type":"DPoP","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}`),
			check: func(t *testing.T, r *Result) {
				if r.JKT != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" || r.TokenType != "DPoP" || r.X5TS256 != "" {
					t.Fatalf("jkt %q, token_type %q, x5t %q", r.JKT, r.TokenType, r.X5TS256)
				}
			}},
		{name: "certificate-bound, other cnf members ignored", status: 200, ctype: json, body: obj(`,"cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2","jwk":{"kty":"EC"}}`),
			check: func(t *testing.T, r *Result) {
				if r.X5TS256 != "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" || r.JKT != "" {
					t.Fatalf("x5t %q, jkt %q", r.X5TS256, r.JKT)
				}
			}},
		{name: "cnf null is absent", status: 200, ctype: json, body: obj(`,"cnf":null`),
			check: func(t *testing.T, r *Result) {
				if r.JKT != "" || r.X5TS256 != "" {
					t.Fatalf("jkt %q, x5t %q", r.JKT, r.X5TS256)
				}
			}},
		{name: "cnf string", status: 200, ctype: json, body: obj(`,"cnf":"jkt"`), wantErr: KindBadResponse},
		{name: "cnf array", status: 200, ctype: json, body: obj(`,"cnf":[{"jkt":"x"}]`), wantErr: KindBadResponse},
		{name: "cnf jkt number", status: 200, ctype: json, body: obj(`,"cnf":{"jkt":5}`), wantErr: KindBadResponse},
		{name: "cnf jkt empty", status: 200, ctype: json, body: obj(`,"cnf":{"jkt":""}`), wantErr: KindBadResponse},
		{name: "cnf x5t#S256 object", status: 200, ctype: json, body: obj(`,"cnf":{"x5t#S256":{}}`), wantErr: KindBadResponse},
		{name: "token_type number", status: 200, ctype: json, body: obj(`,"token_type":1`), wantErr: KindBadResponse},
		{name: "hydra charset", status: 200, ctype: "application/json;charset=UTF-8", body: obj("")},
		{name: "hydra charset spaced", status: 200, ctype: "application/json; charset=utf-8", body: obj("")},
		{name: "inactive", status: 200, ctype: json, body: `{"active":false}`, want: &Result{Active: false, MaxAge: -1}},
		{name: "inactive ignores other members", status: 200, ctype: json, body: `{"active":false,"exp":"x","phantom_token":5}`, want: &Result{Active: false, MaxAge: -1}},
		{name: "active string true", status: 200, ctype: json, body: `{"active":"true","phantom_token":"` + forwarded + `"}`, wantErr: KindBadResponse},
		{name: "active missing", status: 200, ctype: json, body: `{"phantom_token":"` + forwarded + `"}`, wantErr: KindBadResponse},
		{name: "active null", status: 200, ctype: json, body: `{"active":null}`, wantErr: KindBadResponse},
		{name: "active 1", status: 200, ctype: json, body: `{"active":1}`, wantErr: KindBadResponse},
		{name: "body array", status: 200, ctype: json, body: `[{"active":true}]`, wantErr: KindBadResponse},
		{name: "body null", status: 200, ctype: json, body: `null`, wantErr: KindBadResponse},
		{name: "body truncated", status: 200, ctype: json, body: obj("")[:30], wantErr: KindBadResponse},
		{name: "trailing garbage", status: 200, ctype: json, body: obj("") + `{}`, wantErr: KindBadResponse},
		{name: "text/html", status: 200, ctype: "text/html", body: obj(""), wantErr: KindBadResponse},
		{name: "jwt media type in json mode", status: 200, ctype: "application/jwt", body: forwarded, wantErr: KindBadResponse},
		{name: "204 in json mode", status: 204, wantErr: KindBadResponse},
		{name: "aud array", status: 200, ctype: json, body: obj(`,"aud":["a","b"]`),
			check: func(t *testing.T, r *Result) { wantAud(t, r, []string{"a", "b"}) }},
		{name: "aud empty array", status: 200, ctype: json, body: obj(`,"aud":[]`),
			check: func(t *testing.T, r *Result) { wantAud(t, r, []string{}) }},
		{name: "aud absent", status: 200, ctype: json, body: obj(""),
			check: func(t *testing.T, r *Result) { wantAud(t, r, nil) }},
		{name: "aud null", status: 200, ctype: json, body: obj(`,"aud":null`),
			check: func(t *testing.T, r *Result) { wantAud(t, r, nil) }},
		{name: "aud number", status: 200, ctype: json, body: obj(`,"aud":5`), wantErr: KindBadResponse},
		{name: "aud mixed array", status: 200, ctype: json, body: obj(`,"aud":["a",5]`), wantErr: KindBadResponse},
		{name: "scope array", status: 200, ctype: json, body: obj(`,"scope":["mcp:tools","mcp:read"]`),
			check: func(t *testing.T, r *Result) {
				if r.Scope != "mcp:tools mcp:read" {
					t.Fatalf("scope = %q", r.Scope)
				}
			}},
		{name: "scope number", status: 200, ctype: json, body: obj(`,"scope":1`), wantErr: KindBadResponse},
		{name: "exp float", status: 200, ctype: json, body: obj(`,"exp":1.9e9`),
			check: func(t *testing.T, r *Result) {
				if !r.ExpiresAt.Equal(time.Unix(1900000000, 0)) {
					t.Fatalf("exp = %v", r.ExpiresAt)
				}
			}},
		{name: "exp string", status: 200, ctype: json, body: obj(`,"exp":"2000000000"`), wantErr: KindBadResponse},
		{name: "exp bool", status: 200, ctype: json, body: obj(`,"exp":true`), wantErr: KindBadResponse},
		{name: "exp negative", status: 200, ctype: json, body: obj(`,"exp":-5`), wantErr: KindBadResponse},
		{name: "exp absurd", status: 200, ctype: json, body: obj(`,"exp":1e300`), wantErr: KindBadResponse},
		{name: "nbf string", status: 200, ctype: json, body: obj(`,"nbf":"x"`), wantErr: KindBadResponse},
		{name: "iat object", status: 200, ctype: json, body: obj(`,"iat":{}`), wantErr: KindBadResponse},
		{name: "client_id number", status: 200, ctype: json, body: obj(`,"client_id":7`), wantErr: KindBadResponse},
		{name: "no sub no iss (fosite, oidc-provider)", status: 200, ctype: json, body: obj(`,"client_id":"agent"`), issuer: testIssuer,
			check: func(t *testing.T, r *Result) {
				if r.Subject != "" || r.Issuer != "" || r.ClientID != "agent" {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "json iss mismatch", status: 200, ctype: json, body: obj(`,"iss":"https://evil.example.com"`), issuer: testIssuer, wantErr: KindBadResponse},
		{name: "json iss match", status: 200, ctype: json, body: obj(`,"iss":"` + testIssuer + `"`), issuer: testIssuer},
		{name: "forwarded jwt iss mismatch", status: 200, ctype: json, body: `{"active":true,"phantom_token":"` + foreignIss + `"}`, issuer: testIssuer, wantErr: KindBadResponse},
		{name: "jwt member missing", status: 200, ctype: json, body: `{"active":true}`, wantErr: KindBadResponse},
		{name: "jwt member empty", status: 200, ctype: json, body: `{"active":true,"phantom_token":""}`, wantErr: KindBadResponse},
		{name: "jwt member number", status: 200, ctype: json, body: `{"active":true,"phantom_token":12}`, wantErr: KindBadResponse},
		{name: "jwt member opaque", status: 200, ctype: json, body: `{"active":true,"phantom_token":"` + testToken + `"}`, wantErr: KindBadResponse},
		{name: "jwt member alg none", status: 200, ctype: json, body: `{"active":true,"phantom_token":"` + rawJWS(`{"alg":"none"}`, `{}`, "c2ln") + `"}`, wantErr: KindBadResponse},
		{name: "jwt exp string", status: 200, ctype: json, body: `{"active":true,"phantom_token":"` + badExp + `"}`, wantErr: KindBadResponse},
		{name: "jwt without exp", status: 200, ctype: json, body: `{"active":true,"phantom_token":"` + noExp + `"}`,
			check: func(t *testing.T, r *Result) {
				if !r.JWTExpiresAt.IsZero() {
					t.Fatalf("JWTExpiresAt = %v", r.JWTExpiresAt)
				}
			}},
		{name: "oversized", status: 200, ctype: json, body: obj(`,"pad":"` + strings.Repeat("x", 4096) + `"`), wantErr: KindBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := withContentType(tt.ctype)
			as := newFakeAS(t, reply(tt.status, tt.body, hdr...))
			c := newTestClient(t, as.URL, func(c *Config) {
				c.Format, c.JWTClaim, c.Issuer, c.MaxBodyBytes = FormatJSON, "phantom_token", tt.issuer, 4096
			})
			res, err := c.Introspect(context.Background(), testToken, "")
			if tt.wantErr != 0 {
				wantKind(t, err, tt.wantErr, tt.status, forwarded, tt.body)
				return
			}
			if err != nil {
				t.Fatalf("Introspect: %v", err)
			}
			switch {
			case tt.want != nil:
				if !reflect.DeepEqual(res, tt.want) {
					t.Fatalf("result\n got %+v\nwant %+v", res, tt.want)
				}
			case tt.check != nil:
				tt.check(t, res)
			default:
				if !res.Active || res.JWT == "" {
					t.Fatalf("result %+v", res)
				}
			}
		})
	}
}

func wantAud(t *testing.T, r *Result, want []string) {
	t.Helper()
	if (r.Audience == nil) != (want == nil) || !slices.Equal(r.Audience, want) {
		t.Fatalf("aud = %#v, want %#v", r.Audience, want)
	}
}

func TestIntrospectCacheControl(t *testing.T) {
	testKeys(t)
	jwt := signJWT(t, "ES256", ecKey, "", map[string]any{"exp": 2000000000}, nil)
	tests := []struct {
		name   string
		status int
		cc     []string
		want   time.Duration
	}{
		{"absent", 200, nil, -1},
		{"max-age", 200, []string{"max-age=60"}, 60 * time.Second},
		{"no-store ignored", 200, []string{"no-store, max-age=30"}, 30 * time.Second},
		{"no-store alone", 200, []string{"no-store, no-cache"}, -1},
		{"case and spaces", 200, []string{"private , MAX-AGE = 45"}, 45 * time.Second},
		{"quoted", 200, []string{`max-age="20"`}, 20 * time.Second},
		{"zero", 200, []string{"max-age=0"}, 0},
		{"negative", 200, []string{"max-age=-5"}, -1},
		{"garbage", 200, []string{"max-age=soon"}, -1},
		{"no value", 200, []string{"max-age"}, -1},
		{"s-maxage is not max-age", 200, []string{"s-maxage=10"}, -1},
		{"first wins", 200, []string{"max-age=10, max-age=99"}, 10 * time.Second},
		{"second header line", 200, []string{"no-cache", "max-age=15"}, 15 * time.Second},
		{"huge saturates", 200, []string{"max-age=99999999999999999999999"}, (1 << 31) * time.Second},
		{"on 204", 204, []string{"max-age=5"}, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
				for _, v := range tt.cc {
					w.Header().Add("Cache-Control", v)
				}
				w.Header().Set("Content-Type", "application/jwt")
				w.WriteHeader(tt.status)
				if tt.status == 200 {
					_, _ = w.Write([]byte(jwt))
				}
			})
			c := newTestClient(t, as.URL, nil)
			res, err := c.Introspect(context.Background(), testToken, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.MaxAge != tt.want {
				t.Fatalf("MaxAge = %v, want %v", res.MaxAge, tt.want)
			}
		})
	}
}

func TestIntrospectStatuses(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		headers    []string
		body       string
		kind       ErrorKind
		retryAfter func(time.Duration) bool
	}{
		{"503 retry-after seconds", 503, []string{"Retry-After", "7"}, "", KindUnavailable, func(d time.Duration) bool { return d == 7*time.Second }},
		{"503 retry-after date", 503, []string{"Retry-After", date}, "", KindUnavailable, func(d time.Duration) bool { return d > 80*time.Second && d <= 90*time.Second }},
		{"503 retry-after past date", 503, []string{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}, "", KindUnavailable, func(d time.Duration) bool { return d == 0 }},
		{"503 retry-after garbage", 503, []string{"Retry-After", "-3"}, "", KindUnavailable, func(d time.Duration) bool { return d == 0 }},
		{"503 retry-after huge", 503, []string{"Retry-After", "999999999999999999999"}, "", KindUnavailable, func(d time.Duration) bool { return d == 24*time.Hour }},
		{"503 no retry-after", 503, nil, "down", KindUnavailable, func(d time.Duration) bool { return d == 0 }},
		{"400", 400, nil, `{"error":"invalid_request","token":"` + testToken + `"}`, KindBadResponse, nil},
		{"401 bad gateway credentials", 401, []string{"WWW-Authenticate", "Basic"}, `{"error":"invalid_client"}`, KindBadResponse, nil},
		{"403", 403, nil, "", KindBadResponse, nil},
		{"404", 404, nil, "not found", KindBadResponse, nil},
		{"500", 500, nil, "stack trace " + testSecret, KindBadResponse, nil},
		{"502", 502, nil, "", KindBadResponse, nil},
		{"504", 504, nil, "", KindBadResponse, nil},
		{"429", 429, []string{"Retry-After", "3"}, "", KindBadResponse, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, reply(tt.status, tt.body, tt.headers...))
			c := newTestClient(t, as.URL, nil)
			res, err := c.Introspect(context.Background(), testToken, "")
			if res != nil {
				t.Fatalf("result with error: %+v", res)
			}
			e := wantKind(t, err, tt.kind, tt.status, tt.body)
			if tt.retryAfter != nil && !tt.retryAfter(e.RetryAfter) {
				t.Fatalf("RetryAfter = %v", e.RetryAfter)
			}
			if want := fmt.Sprintf("introspection endpoint answered status %d", tt.status); err.Error() != want {
				t.Fatalf("message = %q, want %q", err, want)
			}
			if n := as.hits.Load(); n != 1 {
				t.Fatalf("AS hit %d times, want 1 (no retry on HTTP status)", n)
			}
		})
	}
}

func TestIntrospectRedirectNotFollowed(t *testing.T) {
	target := newFakeAS(t, reply(204, ""))
	as := newFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	c := newTestClient(t, as.URL, nil)
	_, err := c.Introspect(context.Background(), testToken, "")
	wantKind(t, err, KindBadResponse, http.StatusTemporaryRedirect)
	if n := target.hits.Load(); n != 0 {
		t.Fatalf("redirect followed (%d hits): credentials and token would leak", n)
	}
}

func TestIntrospectTimeout(t *testing.T) {
	tests := []struct {
		name    string
		handler func(release <-chan struct{}) http.HandlerFunc
	}{
		{"no headers", func(release <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		}},
		{"stalled body", func(release <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/jwt")
				w.WriteHeader(200)
				_, _ = w.Write([]byte("eyJhbGciOiJSUzI1NiJ9."))
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			as := newFakeAS(t, tt.handler(release))
			defer close(release)
			c := newTestClient(t, as.URL, func(c *Config) { c.Timeout = 150 * time.Millisecond })
			start := time.Now()
			_, err := c.Introspect(context.Background(), testToken, "")
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %s with a 150ms timeout", d)
			}
			wantKind(t, err, KindUnavailable, -1)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want DeadlineExceeded in chain: %v", err)
			}
			if n := as.hits.Load(); n != 1 {
				t.Fatalf("AS hit %d times: timeouts must not be retried", n)
			}
		})
	}
}

func TestIntrospectCallerCancel(t *testing.T) {
	as := newFakeAS(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := newTestClient(t, as.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Introspect(ctx, testToken, "")
	wantKind(t, err, KindUnavailable, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want Canceled in chain: %v", err)
	}
}

// countingDialer wraps the default dialer and counts dial attempts.
func countingClient(n *atomic.Int32) *http.Client {
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return d.DialContext(ctx, network, addr)
	}}
	return &http.Client{Transport: tr, CheckRedirect: noRedirects}
}

func TestIntrospectConnectionRefusedRetriedOnce(t *testing.T) {
	addr := closedAddr(t) // nothing listens: connection refused

	var dials atomic.Int32
	c := newTestClient(t, "http://"+addr+"/introspect", func(c *Config) { c.HTTPClient = countingClient(&dials) })
	_, err := c.Introspect(context.Background(), testToken, "")
	e := wantKind(t, err, KindUnavailable, 0, addr+"/introspect")
	if !strings.Contains(e.Error(), "refused") {
		t.Fatalf("message should name the cause: %q", e)
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("dialed %d times, want 2 (one retry)", n)
	}

	// Default client too.
	c = newTestClient(t, "http://"+addr+"/introspect", nil)
	_, err = c.Introspect(context.Background(), testToken, "")
	wantKind(t, err, KindUnavailable, 0)
}

// A connection that the AS drops after reading the request is not retried:
// the AS may have processed it.
func TestIntrospectNoRetryAfterRequestSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepts atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			go func() {
				buf := make([]byte, 4096)
				_, _ = conn.Read(buf)
				conn.Close()
			}()
		}
	}()
	c := newTestClient(t, "http://"+ln.Addr().String()+"/introspect", nil)
	_, err = c.Introspect(context.Background(), testToken, "")
	wantKind(t, err, KindUnavailable, 0)
	// net/http itself may retry a request on a connection that died before
	// any response byte when it can rewind the body; our code adds none.
	if n := accepts.Load(); n > 2 {
		t.Fatalf("AS saw %d connections", n)
	}
}

func TestIntrospectRetryRecovers(t *testing.T) {
	as := newFakeAS(t, reply(204, ""))
	var dials atomic.Int32
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}
		return d.DialContext(ctx, network, addr)
	}}
	c := newTestClient(t, as.URL, func(c *Config) { c.HTTPClient = &http.Client{Transport: tr} })
	res, err := c.Introspect(context.Background(), testToken, "")
	if err != nil || res.Active {
		t.Fatalf("res=%+v err=%v", res, err)
	}
	if n := as.hits.Load(); n != 1 {
		t.Fatalf("AS hit %d times", n)
	}
}

func TestIntrospectEmptyToken(t *testing.T) {
	as := newFakeAS(t, reply(204, ""))
	c := newTestClient(t, as.URL, nil)
	if _, err := c.Introspect(context.Background(), "", ""); err == nil {
		t.Fatal("want error")
	}
	if n := as.hits.Load(); n != 0 {
		t.Fatal("empty token sent to the AS")
	}
}

func TestIntrospectWithVerifier(t *testing.T) {
	testKeys(t)
	jwks := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "k1", "RS256")))
	claims := map[string]any{"iss": testIssuer, "exp": 2000000000, "sub": "alice"}
	good := signJWT(t, "RS256", rsaKey1, "k1", claims, nil)
	forged := signJWT(t, "RS256", rsaKey2, "k1", claims, nil)

	for _, format := range []Format{FormatJWT, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			var body atomic.Value
			as := newFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
				jwt := body.Load().(string)
				if format == FormatJWT {
					reply(200, jwt, "Content-Type", "application/jwt")(w, r)
					return
				}
				reply(200, `{"active":true,"jwt":"`+jwt+`"}`, "Content-Type", "application/json")(w, r)
			})
			v := newTestVerifier(t, jwks.URL)
			c := newTestClient(t, as.URL, func(c *Config) {
				c.Verifier, c.Issuer, c.Format = v, testIssuer, format
				if format == FormatJSON {
					c.JWTClaim = "jwt"
				}
			})
			body.Store(good)
			res, err := c.Introspect(context.Background(), testToken, "")
			if err != nil || !res.Active || res.JWT != good {
				t.Fatalf("res=%+v err=%v", res, err)
			}
			body.Store(forged)
			_, err = c.Introspect(context.Background(), testToken, "")
			wantKind(t, err, KindBadResponse, 200, forged, good)
		})
	}

	t.Run("jwks down", func(t *testing.T) {
		v := newTestVerifier(t, "http://"+closedAddr(t)+"/jwks")
		as := newFakeAS(t, reply(200, good, "Content-Type", "application/jwt"))
		c := newTestClient(t, as.URL, func(c *Config) { c.Verifier = v })
		_, err := c.Introspect(context.Background(), testToken, "")
		wantKind(t, err, KindUnavailable, 200, good)
	})
}
