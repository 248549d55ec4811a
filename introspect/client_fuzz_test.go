package introspect

import (
	"context"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// replyStatus turns the fuzzed status into an HTTP status: a value in
// 100–599 is used as is (so seeds read naturally), anything else is folded
// into that range.
func replyStatus(n uint16) int {
	if n >= 100 && n <= 599 {
		return int(n)
	}
	return fuzzStatus(n)
}

// fuzzClient builds a Client whose AS is *reply; mod adjusts the config.
func fuzzClient(f *testing.F, reply **fuzzReply, mod func(*Config)) *Client {
	f.Helper()
	cfg := Config{
		Endpoint: fuzzEndpoint, ClientID: testClientID, ClientSecret: testSecret,
		HTTPClient: fuzzHTTPClient(reply), Now: fixedClock,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	return c
}

// verifiedByAS reports whether jwt carries a valid signature by the AS key.
func verifiedByAS(jwt string) bool {
	_, err := jws.Verify([]byte(jwt), jws.WithKey(jwa.ES256, &fuzzASKey.PublicKey))
	return err == nil
}

// mediaTypeOf parses a Content-Type independently of the client.
func mediaTypeOf(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// FuzzIntrospectJSON feeds RFC 7662 JSON replies (Hydra, oidc-provider,
// Keycloak and Curity style) to the introspection client. mode picks the
// configuration: 0 no jwt_claim (the JWT comes from elsewhere), 1 jwt_claim
// "jwt" without a verifier, 2 and 3 jwt_claim "jwt" with the AS key set and
// issuer, where a "jwt" member written as a JSON object is signed by the
// test first — by the AS key (2) or a key the AS does not publish (3).
//
// Properties: exactly one of result and error; an error is an *Error with
// the reply's status and a bounded message that echoes no body; active only
// for a 200 application/json object whose "active" is the boolean true,
// inactive only for "active": false, and then with no data; the forwarded
// JWT is the member's string, a compact JWS, and, with a verifier, signed
// by the AS key; the claims are the member values; MaxAge follows
// Cache-Control.
func FuzzIntrospectJSON(f *testing.F) {
	fuzzKeys(f)
	var reply *fuzzReply
	verifier := fuzzVerifier(f)
	clients := [4]*Client{
		fuzzClient(f, &reply, func(c *Config) { c.Format, c.Issuer = FormatJSON, testIssuer }),
		fuzzClient(f, &reply, func(c *Config) { c.Format, c.JWTClaim = FormatJSON, "jwt" }),
		fuzzClient(f, &reply, func(c *Config) {
			c.Format, c.JWTClaim, c.Issuer, c.Verifier = FormatJSON, "jwt", testIssuer, verifier
		}),
	}
	clients[3] = clients[2]

	const ctJSON = "application/json; charset=utf-8"
	hydra := `{"active":true,"scope":"mcp:tools offline","client_id":"agent","sub":"agent",` +
		`"exp":1750003600,"iat":1750000000,"nbf":1750000000,"aud":[],"iss":"https://as.example.com",` +
		`"token_type":"Bearer","token_use":"access_token"}`
	oidcProvider := `{"active":true,"client_id":"agent","exp":1750003600,"iat":1750000000,` +
		`"iss":"https://as.example.com","scope":"mcp:tools","token_type":"Bearer","aud":"https://mcp.example.com/mcp"}`
	keycloak := `{"active":true,"sub":"alice","client_id":"agent","scope":["mcp:tools","openid"],` +
		`"exp":1750003600,"aud":["https://mcp.example.com/mcp","account"],` +
		`"jwt":{"iss":"https://as.example.com","sub":"alice","exp":1750003600,"aud":"https://mcp.example.com/mcp"}}`
	f.Add(uint16(200), ctJSON, "no-cache, no-store, must-revalidate", hydra, uint8(0))
	f.Add(uint16(200), "application/json", "no-store", oidcProvider, uint8(0))
	f.Add(uint16(200), "application/json", "max-age=60", keycloak, uint8(2))
	f.Add(uint16(200), "application/json", "", keycloak, uint8(3))
	f.Add(uint16(200), "application/json;charset=UTF-8", "", `{"active":false}`, uint8(1))
	f.Add(uint16(200), "application/json", "", `{"active":"true","jwt":"a.b.c"}`, uint8(1))
	f.Add(uint16(200), "text/html", "", `<html>gateway timeout</html>`, uint8(0))
	f.Add(uint16(401), "application/json", "", `{"error":"invalid_client"}`, uint8(0))
	f.Add(uint16(503), "application/json", "", `{"error":"temporarily_unavailable"}`, uint8(0))
	f.Add(uint16(204), "", "", "", uint8(0))

	f.Fuzz(func(t *testing.T, rawStatus uint16, contentType, cacheControl, body string, mode uint8) {
		mode %= 4
		status := replyStatus(rawStatus)
		if mode >= 2 {
			body = signMember(t, body, "jwt", mode == 3)
		}
		reply = &fuzzReply{status: status, header: replyHeader(contentType, cacheControl), body: body}
		res, err := clients[mode].Introspect(context.Background(), testToken, "")

		if err != nil {
			if res != nil {
				t.Fatalf("result %+v together with error %v", res, err)
			}
			checkErr(t, err, status, []string{body, contentType, cacheControl},
				"application/json", testIssuer, testClientID)
			return
		}
		if res == nil {
			t.Fatal("nil result and nil error")
		}
		checkMaxAge(t, res.MaxAge, reply.header)
		if status != http.StatusOK || mediaTypeOf(contentType) != "application/json" {
			t.Fatalf("status %d, content type %q accepted: %+v", status, contentType, res)
		}
		obj, ok := jsonObject([]byte(body))
		if !ok {
			t.Fatalf("a body that is not a json object accepted: %+v", res)
		}
		if !res.Active {
			if obj["active"] != false {
				t.Fatalf(`inactive, but "active" is %#v`, obj["active"])
			}
			checkInactive(t, res)
			return
		}
		if obj["active"] != true {
			t.Fatalf(`active, but "active" is %#v`, obj["active"])
		}
		checkDates(t, res)
		if res.Subject != stringMember(obj, "sub") || res.ClientID != stringMember(obj, "client_id") ||
			res.Issuer != stringMember(obj, "iss") {
			t.Fatalf("claims %+v differ from the reply's members", res)
		}
		if mode != 1 && res.Issuer != "" && res.Issuer != testIssuer {
			t.Fatalf("issuer %q accepted", res.Issuer)
		}
		if mode == 0 {
			if res.JWT != "" {
				t.Fatalf("jwt %q without jwt_claim", res.JWT)
			}
			return
		}
		if res.JWT != stringMember(obj, "jwt") {
			t.Fatalf("forwarded jwt %q is not the member's value", res.JWT)
		}
		checkJWT(t, res.JWT)
		if mode >= 2 {
			if !verifiedByAS(res.JWT) {
				t.Fatalf("forwarded jwt not signed by the AS (mode %d)", mode)
			}
			if cl, _ := payloadClaims(res.JWT); cl["iss"] != testIssuer {
				t.Fatalf("forwarded jwt has issuer %#v", cl["iss"])
			}
		}
	})
}

// stringMember is obj[name] when it is a string, else "".
func stringMember(obj map[string]any, name string) string {
	s, _ := obj[name].(string)
	return s
}

// FuzzIntrospectJWT feeds Curity-style replies (Accept: application/jwt; a
// 200 body is the access-token JWT itself, 204 is inactive). mode: 0 no
// verifier and the body as fuzzed; 1 the AS key set and issuer, body as
// fuzzed; 2 the same, with the body taken as the JWT payload and signed by
// the AS key; 3 signed by a key the AS does not publish.
//
// Properties: exactly one of result and error; errors as in
// FuzzIntrospectJSON; active only for a 200 application/jwt or
// application/at+jwt reply, forwarding exactly the trimmed body, which is a
// compact JWS (and with a verifier signed by the AS key, with the
// configured issuer); inactive only for 204, with no data; a JWT signed by
// another key is never active.
func FuzzIntrospectJWT(f *testing.F) {
	fuzzKeys(f)
	var reply *fuzzReply
	verifier := fuzzVerifier(f)
	structural := fuzzClient(f, &reply, nil)
	verifying := fuzzClient(f, &reply, func(c *Config) { c.Issuer, c.Verifier = testIssuer, verifier })

	curity := `{"iss":"https://as.example.com","sub":"alice","client_id":"agent","scope":"mcp:tools openid",` +
		`"aud":"https://mcp.example.com/mcp","exp":1750003600,"iat":1750000000,"purpose":"access_token"}`
	f.Add(uint16(200), "application/jwt", "max-age=300", curity, uint8(2))
	f.Add(uint16(200), "application/jwt; charset=utf-8", "", curity, uint8(3))
	f.Add(uint16(200), "application/at+jwt", "", `{"iss":"https://as.example.com","exp":1.75e9}`, uint8(2))
	f.Add(uint16(200), "application/jwt", "", rawJWS(`{"alg":"RS256","kid":"k1"}`, curity, "c2ln"), uint8(0))
	f.Add(uint16(200), "application/jwt", "", rawJWS(`{"alg":"none"}`, curity, ""), uint8(0))
	f.Add(uint16(200), "application/jwt", "", "\r\n "+rawJWS(`{"alg":"ES256","crit":["b64"]}`, curity, "c2ln")+"\n", uint8(0))
	f.Add(uint16(200), "application/jwt", "", rawJWS(`{"alg":"ES256","typ":"token-introspection+jwt"}`, curity, "c2ln"), uint8(1))
	f.Add(uint16(200), "application/json", "", `{"active":true}`, uint8(0))
	f.Add(uint16(204), "", "max-age=5", "", uint8(0))
	f.Add(uint16(204), "application/jwt", "", "trailing junk", uint8(1))
	f.Add(uint16(404), "text/plain", "", "not found", uint8(0))
	f.Add(uint16(503), "text/plain", "", "down for maintenance", uint8(1))
	f.Add(uint16(302), "", "", "", uint8(0))

	f.Fuzz(func(t *testing.T, rawStatus uint16, contentType, cacheControl, body string, mode uint8) {
		mode %= 4
		status := replyStatus(rawStatus)
		client := verifying
		switch mode {
		case 0:
			client = structural
		case 2, 3:
			body = signPayload(t, []byte(body), "at+jwt", mode == 3)
		}
		reply = &fuzzReply{status: status, header: replyHeader(contentType, cacheControl), body: body}
		res, err := client.Introspect(context.Background(), testToken, "")

		if err != nil {
			if res != nil {
				t.Fatalf("result %+v together with error %v", res, err)
			}
			checkErr(t, err, status, []string{body, contentType, cacheControl},
				"application/jwt", testIssuer, testClientID)
			return
		}
		if res == nil {
			t.Fatal("nil result and nil error")
		}
		checkMaxAge(t, res.MaxAge, reply.header)
		if !res.Active {
			if status != http.StatusNoContent {
				t.Fatalf("inactive for status %d", status)
			}
			checkInactive(t, res)
			return
		}
		if status != http.StatusOK {
			t.Fatalf("active for status %d", status)
		}
		if mt := mediaTypeOf(contentType); mt != "application/jwt" && mt != "application/at+jwt" {
			t.Fatalf("active for content type %q", contentType)
		}
		if res.JWT != strings.TrimSpace(body) {
			t.Fatalf("forwarded jwt %q is not the trimmed body", res.JWT)
		}
		checkJWT(t, res.JWT)
		checkDates(t, res)
		if !res.JWTExpiresAt.Equal(res.ExpiresAt) {
			t.Fatalf("jwt exp %v differs from exp %v", res.JWTExpiresAt, res.ExpiresAt)
		}
		if _, ok := payloadClaims(res.JWT); !ok {
			t.Fatalf("forwarded jwt payload is not a json object")
		}
		if mode != 0 {
			if mode == 3 || !verifiedByAS(res.JWT) {
				t.Fatalf("forwarded jwt not signed by the AS (mode %d)", mode)
			}
			if res.Issuer != testIssuer {
				t.Fatalf("issuer %q accepted", res.Issuer)
			}
		}
	})
}
