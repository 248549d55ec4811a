package introspect

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzExchangeReply feeds RFC 8693 token exchange replies to the
// exchanger. mode: 0 requests a jwt with no verifier, body as fuzzed; 1
// requests an access token with the in-memory AS key set and issuer, where
// an "access_token" written as a JSON object is signed by the AS key
// first; 2 the same signed by a key the AS does not publish.
//
// Properties: exactly one of result and error; errors as in
// FuzzIntrospectJSON, and KindRejected exactly for a 400 JSON object whose
// "error" is invalid_request, invalid_target or invalid_grant; success only
// for a 200 JSON object whose issued_token_type is what was asked for,
// whose token_type is Bearer or N_A when present, forwarding exactly its
// access_token, a compact JWS (signed by the AS key, with the configured
// issuer, when verifying), with an expiry after now and no later than the
// JWT's exp and expires_in.
func FuzzExchangeReply(f *testing.F) {
	fuzzKeys(f)
	var reply *fuzzReply
	verifier := fuzzVerifier(f)
	newEx := func(mod func(*ExchangeConfig)) *Exchanger {
		cfg := ExchangeConfig{
			Endpoint: "https://as.example.com/token", ClientID: testClientID, ClientSecret: testSecret,
			HTTPClient: fuzzHTTPClient(&reply), Now: fixedClock,
		}
		if mod != nil {
			mod(&cfg)
		}
		e, err := NewExchanger(cfg)
		if err != nil {
			f.Fatal(err)
		}
		return e
	}
	plain := newEx(nil)
	verifying := newEx(func(c *ExchangeConfig) {
		c.RequestedTokenType, c.Issuer, c.Verifier = TokenTypeAccessToken, testIssuer, verifier
	})

	// As oidc-provider's token exchange grant and Keycloak answer.
	issued := `{"access_token":{"iss":"https://as.example.com","sub":"alice","aud":"https://mcp.example.com/mcp",` +
		`"exp":1750000900,"iat":1750000000,"scope":"mcp:tools"},` +
		`"issued_token_type":"urn:ietf:params:oauth:token-type:jwt","token_type":"Bearer","expires_in":600,"scope":"mcp:tools"}`
	const ctJSON = "application/json; charset=utf-8"
	f.Add(uint16(200), ctJSON, issued, uint8(1))
	f.Add(uint16(200), ctJSON, issued, uint8(2))
	f.Add(uint16(200), "application/json", strings.Replace(issued, `"Bearer"`, `"N_A"`, 1), uint8(1))
	f.Add(uint16(200), "application/json", strings.Replace(issued, "token-type:jwt", "token-type:access_token", 1), uint8(1))
	f.Add(uint16(200), "application/json", strings.Replace(issued, `600`, `-1`, 1), uint8(1))
	f.Add(uint16(200), "application/json", `{"access_token":"`+rawJWS(`{"alg":"RS256"}`, `{"exp":1750000900}`, "c2ln")+
		`","issued_token_type":"urn:ietf:params:oauth:token-type:jwt","expires_in":1e300}`, uint8(0))
	f.Add(uint16(200), "application/json", `{"access_token":"opaque-reference","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`, uint8(0))
	f.Add(uint16(400), "application/json", `{"error":"invalid_grant","error_description":"subject token is expired"}`, uint8(0))
	f.Add(uint16(400), "application/json", `{"error":"invalid_target"}`, uint8(1))
	f.Add(uint16(400), "application/json", `{"error":"invalid_client","error_description":"client authentication failed"}`, uint8(0))
	f.Add(uint16(400), "application/json", `{"error":"server said <b>no</b>"}`, uint8(0))
	f.Add(uint16(400), "text/html", `<h1>Bad Request</h1>`, uint8(0))
	f.Add(uint16(401), "application/json", `{"error":"invalid_client"}`, uint8(0))
	f.Add(uint16(503), "text/plain", "busy", uint8(0))

	f.Fuzz(func(t *testing.T, rawStatus uint16, contentType, body string, mode uint8) {
		mode %= 3
		status := replyStatus(rawStatus)
		ex := verifying
		if mode == 0 {
			ex = plain
		} else {
			body = signMember(t, body, "access_token", mode == 2)
		}
		reply = &fuzzReply{status: status, header: replyHeader(contentType, ""), body: body}
		out, err := ex.Exchange(context.Background(), testToken, "")

		obj, isObject := jsonObject([]byte(body))
		isJSON := mediaTypeOf(contentType) == "application/json"
		if err != nil {
			if out != nil {
				t.Fatalf("result %+v together with error %v", out, err)
			}
			e := checkErr(t, err, status, []string{body, contentType},
				"application/json", testIssuer, testClientID, TokenTypeJWT, TokenTypeAccessToken)
			code, _ := obj["error"].(string)
			rejection := status == http.StatusBadRequest && isJSON && isObject &&
				(code == "invalid_request" || code == "invalid_target" || code == "invalid_grant")
			if (e.Kind == KindRejected) != rejection {
				t.Fatalf("kind %s for status %d, error code %q", e.Kind, status, code)
			}
			if status == http.StatusServiceUnavailable && e.Kind != KindUnavailable {
				t.Fatalf("kind %s for a 503", e.Kind)
			}
			return
		}
		if out == nil {
			t.Fatal("nil result and nil error")
		}
		if status != http.StatusOK || !isJSON || !isObject {
			t.Fatalf("status %d, content type %q, body object %v accepted", status, contentType, isObject)
		}
		switch tt := obj["issued_token_type"]; {
		case tt == TokenTypeJWT:
		case tt == TokenTypeAccessToken && mode != 0:
		default:
			t.Fatalf("issued_token_type %#v accepted", tt)
		}
		if tt, ok := obj["token_type"]; ok && tt != nil {
			if s, _ := tt.(string); !strings.EqualFold(s, "bearer") && s != "N_A" {
				t.Fatalf("token_type %#v accepted", tt)
			}
		}
		if out.JWT != stringMember(obj, "access_token") {
			t.Fatalf("forwarded jwt %q is not access_token", out.JWT)
		}
		checkJWT(t, out.JWT)
		if out.Claims == nil || !out.Claims.Active || out.Claims.JWT != out.JWT {
			t.Fatalf("claims %+v do not describe the forwarded jwt", out.Claims)
		}
		checkDates(t, out.Claims)
		if !out.ExpiresAt.IsZero() && !out.ExpiresAt.After(fixedNow) {
			t.Fatalf("expired at %v accepted", out.ExpiresAt)
		}
		if exp := out.Claims.ExpiresAt; !exp.IsZero() && out.ExpiresAt.After(exp) {
			t.Fatalf("expiry %v after the jwt's exp %v", out.ExpiresAt, exp)
		}
		if ei, ok := obj["expires_in"].(float64); ok && ei*float64(time.Second) < float64(maxExpiresIn) {
			if limit := fixedNow.Add(time.Duration(ei * float64(time.Second))); out.ExpiresAt.IsZero() || out.ExpiresAt.After(limit) {
				t.Fatalf("expiry %v beyond expires_in %v", out.ExpiresAt, ei)
			}
		}
		if mode != 0 {
			if mode == 2 || !verifiedByAS(out.JWT) {
				t.Fatalf("forwarded jwt not signed by the AS (mode %d)", mode)
			}
			if out.Claims.Issuer != testIssuer {
				t.Fatalf("issuer %q accepted", out.Claims.Issuer)
			}
		}
	})
}
