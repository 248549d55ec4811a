package introspect

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// FuzzIntrospectRFC9701 feeds signed introspection responses (RFC 9701)
// to a client configured with the in-memory AS key set and issuer. The
// fuzzed payload is the reply JWT's claims, signed by the test according
// to mode, after any "jwt" object inside "token_introspection" has been
// signed as the access token to forward:
//
//	0  AS key, typ token-introspection+jwt, jwt_claim "jwt"
//	1  the same without jwt_claim (the JWT comes from elsewhere)
//	2  AS key, typ at+jwt (an access token, not a response)
//	3  a key the AS does not publish, right typ
//	4  no signing: the payload is the raw body
//	5  AS key, typ application/token-introspection+jwt (the long form)
//
// Properties: errors as in FuzzIntrospectJSON; success only for a 200
// application/token-introspection+jwt reply with the right typ and the AS
// signature (modes 0, 1, 5), whose iss, aud and iat are what RFC 9701
// requires; the decision is "token_introspection"."active"; the reply JWT
// itself is never forwarded, only the member's string, which is a compact
// JWS signed by the AS key.
func FuzzIntrospectRFC9701(f *testing.F) {
	fuzzKeys(f)
	var reply *fuzzReply
	verifier := fuzzVerifier(f)
	withClaim := fuzzClient(f, &reply, func(c *Config) {
		c.Format, c.JWTClaim, c.Issuer, c.Verifier = FormatRFC9701, "jwt", testIssuer, verifier
	})
	noClaim := fuzzClient(f, &reply, func(c *Config) {
		c.Format, c.Issuer, c.Verifier = FormatRFC9701, testIssuer, verifier
	})

	// As oidc-provider's jwtIntrospection answers: the response claims
	// around the RFC 7662 object.
	oidcProvider := `{"iss":"https://as.example.com","aud":"gateway","iat":1749999995,` +
		`"token_introspection":{"active":true,"client_id":"agent","exp":1750003600,"iat":1750000000,` +
		`"iss":"https://as.example.com","scope":"mcp:tools","token_type":"Bearer",` +
		`"aud":"https://mcp.example.com/mcp","jwt":{"iss":"https://as.example.com","sub":"alice","exp":1750003600}}}`
	inactive := `{"iss":"https://as.example.com","aud":["other","gateway"],"iat":1750000010,"token_introspection":{"active":false}}`
	const ct = "application/token-introspection+jwt"
	f.Add(uint16(200), ct, "", oidcProvider, uint8(0))
	f.Add(uint16(200), ct+"; charset=utf-8", "max-age=30", oidcProvider, uint8(1))
	f.Add(uint16(200), ct, "", oidcProvider, uint8(2))
	f.Add(uint16(200), ct, "", oidcProvider, uint8(3))
	f.Add(uint16(200), ct, "", oidcProvider, uint8(5))
	f.Add(uint16(200), ct, "", inactive, uint8(0))
	f.Add(uint16(200), ct, "", `{"iss":"https://as.example.com","aud":"gateway","iat":1749990000,"token_introspection":{"active":true}}`, uint8(0))
	f.Add(uint16(200), ct, "", `{"iss":"https://as.example.com","aud":"gateway","iat":1750000000,"exp":1749999000,"token_introspection":{"active":true}}`, uint8(0))
	f.Add(uint16(200), ct, "", `{"iss":"https://as.example.com","aud":"gateway","iat":1750000000,"token_introspection":"{\"active\":true}"}`, uint8(0))
	f.Add(uint16(200), "application/json", "", `{"active":true}`, uint8(4))
	f.Add(uint16(200), ct, "", rawJWS(`{"alg":"ES256","typ":"token-introspection+jwt"}`, `{"iss":"x"}`, "c2ln"), uint8(4))
	f.Add(uint16(204), "", "", "", uint8(4))

	f.Fuzz(func(t *testing.T, rawStatus uint16, contentType, cacheControl, payload string, mode uint8) {
		mode %= 6
		status := replyStatus(rawStatus)
		signed := signIntrospected(t, payload)
		body := payload
		switch mode {
		case 0, 1:
			body = signPayload(t, []byte(signed), "token-introspection+jwt", false)
		case 2:
			body = signPayload(t, []byte(signed), "at+jwt", false)
		case 3:
			body = signPayload(t, []byte(signed), "token-introspection+jwt", true)
		case 5:
			body = signPayload(t, []byte(signed), "application/token-introspection+jwt", false)
		}
		client := withClaim
		if mode == 1 {
			client = noClaim
		}
		reply = &fuzzReply{status: status, header: replyHeader(contentType, cacheControl), body: body}
		res, err := client.Introspect(context.Background(), testToken, "")

		if err != nil {
			if res != nil {
				t.Fatalf("result %+v together with error %v", res, err)
			}
			checkErr(t, err, status, []string{body, payload, contentType, cacheControl},
				mediaTypeIntrospectionJWT, testIssuer, testClientID)
			return
		}
		if res == nil {
			t.Fatal("nil result and nil error")
		}
		if mode != 0 && mode != 1 && mode != 5 {
			t.Fatalf("mode %d accepted: %+v", mode, res)
		}
		if status != http.StatusOK || mediaTypeOf(contentType) != mediaTypeIntrospectionJWT {
			t.Fatalf("status %d, content type %q accepted", status, contentType)
		}
		checkMaxAge(t, res.MaxAge, reply.header)
		obj, ok := jsonObject([]byte(signed))
		if !ok {
			t.Fatal("a payload that is not a json object accepted")
		}
		checkRFC9701Envelope(t, obj)
		ti, _ := obj["token_introspection"].(map[string]any)
		if !res.Active {
			if ti["active"] != false {
				t.Fatalf(`inactive, but "active" is %#v`, ti["active"])
			}
			checkInactive(t, res)
			return
		}
		if ti["active"] != true {
			t.Fatalf(`active, but "active" is %#v`, ti["active"])
		}
		checkDates(t, res)
		if res.JWT == body {
			t.Fatal("the rfc 9701 response jwt is forwarded")
		}
		if mode == 1 {
			if res.JWT != "" {
				t.Fatalf("jwt %q without jwt_claim", res.JWT)
			}
			return
		}
		if res.JWT != stringMember(ti, "jwt") {
			t.Fatalf("forwarded jwt %q is not the member's value", res.JWT)
		}
		checkJWT(t, res.JWT)
		if !verifiedByAS(res.JWT) {
			t.Fatal("forwarded jwt not signed by the AS")
		}
	})
}

// signIntrospected signs, in the JSON object payload, a "jwt" object inside
// "token_introspection" as the access token to forward (see signMember).
// Other payloads are returned unchanged.
func signIntrospected(t *testing.T, payload string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(payload), &obj) != nil || obj == nil {
		return payload
	}
	ti := obj["token_introspection"]
	if len(ti) == 0 || ti[0] != '{' {
		return payload
	}
	obj["token_introspection"] = json.RawMessage(signMember(t, string(ti), "jwt", false))
	out, err := json.Marshal(obj)
	if err != nil {
		return payload
	}
	return string(out)
}

// checkRFC9701Envelope checks, independently of the client, the reply
// claims RFC 9701 §5 requires of an accepted response: the configured
// issuer, the gateway's client among the audiences, and an iat within the
// default skew of the (fixed) clock.
func checkRFC9701Envelope(t *testing.T, obj map[string]any) {
	t.Helper()
	if obj["iss"] != testIssuer {
		t.Fatalf("iss %#v accepted", obj["iss"])
	}
	addressed := false
	switch aud := obj["aud"].(type) {
	case string:
		addressed = aud == testClientID
	case []any:
		for _, a := range aud {
			addressed = addressed || a == testClientID
		}
	}
	if !addressed {
		t.Fatalf("aud %#v accepted", obj["aud"])
	}
	iat, ok := obj["iat"].(float64)
	if !ok {
		t.Fatalf("iat %#v accepted", obj["iat"])
	}
	if d := time.Duration((iat - float64(fixedNow.Unix())) * float64(time.Second)); d > DefaultMaxIATSkew || d < -DefaultMaxIATSkew {
		t.Fatalf("iat %v off by %s accepted", iat, d)
	}
	if _, ok := obj["token_introspection"].(map[string]any); !ok {
		t.Fatalf("token_introspection %#v accepted", obj["token_introspection"])
	}
}
