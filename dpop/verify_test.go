package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// verifyCase is one proof and the outcome Verify must give it: success
// (code "") with the thumbprint of key, or an *Error with code and reason.
type verifyCase struct {
	name   string
	proof  func(t *testing.T) []string // the DPoP header values
	cfg    func(*Config)               // changes to the default Config
	req    func(*Request)              // changes to testRequest
	key    any                         // success: whose thumbprint is expected
	code   string
	reason string
}

func one(p string) []string { return []string{p} }

func verifyCases(t *testing.T) []verifyCase {
	k := testKeys(t)
	okES := func(over map[string]any) func(*testing.T) []string {
		return func(t *testing.T) []string { return one(craft(t, k.ec, "ES256", nil, over, nil)) }
	}
	hdrES := func(over map[string]any) func(*testing.T) []string {
		return func(t *testing.T) []string { return one(craft(t, k.ec, "ES256", over, nil, nil)) }
	}
	jwkES := func(edit func(m map[string]any)) func(*testing.T) []string {
		return func(t *testing.T) []string {
			j := jwkOf(t, k.ec, false)
			edit(j)
			return one(craft(t, k.ec, "ES256", map[string]any{"jwk": j}, nil, nil))
		}
	}
	bad := func(name string, proof func(*testing.T) []string, reason string) verifyCase {
		return verifyCase{name: name, proof: proof, code: CodeInvalidProof, reason: reason}
	}
	htu := func(u string) func(*testing.T) []string { return okES(map[string]any{"htu": u}) }
	return []verifyCase{
		// Valid proofs, signed by jwx as a client library would.
		{name: "ES256 via jwx", proof: func(t *testing.T) []string { return one(signJWX(t, k.ec, "ES256", nil)) }, key: k.ec},
		{name: "EdDSA via jwx", proof: func(t *testing.T) []string { return one(signJWX(t, k.ed, "EdDSA", nil)) }, key: k.ed},
		{name: "PS256 via jwx", proof: func(t *testing.T) []string { return one(signJWX(t, k.rsa, "PS256", nil)) }, key: k.rsa},
		{name: "RS256 when configured", proof: func(t *testing.T) []string { return one(signJWX(t, k.rsa, "RS256", nil)) },
			cfg: func(c *Config) { c.Algorithms = []string{"RS256"} }, key: k.rsa},
		{name: "ES384 when configured", proof: func(t *testing.T) []string { return one(signJWX(t, k.ec384, "ES384", nil)) },
			cfg: func(c *Config) { c.Algorithms = []string{"ES384"} }, key: k.ec384},
		{name: "typ as full media type", proof: hdrES(map[string]any{"typ": "application/dpop+jwt"}), key: k.ec},
		{name: "typ in another case", proof: hdrES(map[string]any{"typ": "DPoP+JWT"}), key: k.ec},
		{name: "kid is ignored", proof: hdrES(map[string]any{"kid": "some-key"}), key: k.ec},
		{name: "jwk alg use key_ops allow it", proof: jwkES(func(m map[string]any) {
			m["alg"], m["use"], m["key_ops"], m["kid"] = "ES256", "sig", []string{"verify"}, "k1"
		}), key: k.ec},
		{name: "htu normalised: case, default port", proof: htu("HTTPS://MCP.Example.COM:443/mcp"), key: k.ec},
		{name: "htu normalised: request url too", proof: okES(nil), req: func(r *Request) { r.URL = "HTTPS://mcp.EXAMPLE.com:443/./mcp" }, key: k.ec},
		{name: "htu query and fragment ignored", proof: htu("https://mcp.example.com/mcp?x=1#frag"), key: k.ec},
		{name: "htu percent-encoded unreserved", proof: htu("https://mcp.example.com/%6Dcp"), key: k.ec},
		{name: "htu empty path is /", proof: htu("https://mcp.example.com"), req: func(r *Request) { r.URL = "https://mcp.example.com/" }, key: k.ec},
		{name: "htu http default port", proof: htu("http://mcp.example.com:80/mcp"), req: func(r *Request) { r.URL = "http://mcp.example.com/mcp" }, key: k.ec},
		{name: "iat at the oldest", proof: okES(map[string]any{"iat": testNow.Add(-DefaultMaxAge).Unix()}), key: k.ec},
		{name: "iat at the leeway", proof: okES(map[string]any{"iat": testNow.Add(DefaultLeeway).Unix()}), key: k.ec},
		{name: "iat with a fraction", proof: okES(map[string]any{"iat": float64(testNow.Unix()) + 0.25}), key: k.ec},
		{name: "no access token: ath not checked", proof: okES(map[string]any{"ath": del}), req: func(r *Request) { r.AccessToken = "" }, key: k.ec},
		{name: "exp and other claims ignored", proof: okES(map[string]any{"exp": 1, "nbf": "x", "extra": []int{1}}), key: k.ec},

		// Rule 1: one header value, a bounded compact JWS.
		bad("no DPoP header", func(*testing.T) []string { return nil }, reasonHeaderCount),
		bad("two DPoP headers", func(t *testing.T) []string {
			return []string{craft(t, k.ec, "ES256", nil, nil, nil), craft(t, k.ec, "ES256", nil, nil, nil)}
		}, reasonHeaderCount),
		bad("oversized proof", okES(map[string]any{"pad": strings.Repeat("a", maxProofSize)}), reasonTooLarge),
		bad("empty value", func(*testing.T) []string { return one("") }, reasonNotJWS),
		bad("two segments", func(*testing.T) []string { return one("eyJh.eyJh") }, reasonNotJWS),
		bad("four segments", func(t *testing.T) []string { return one(craft(t, k.ec, "ES256", nil, nil, nil) + ".AAAA") }, reasonNotJWS),
		bad("padding in a segment", func(t *testing.T) []string { return one(craft(t, k.ec, "ES256", nil, nil, nil) + "=") }, reasonNotJWS),
		bad("newline in a segment", func(t *testing.T) []string {
			p := craft(t, k.ec, "ES256", nil, nil, nil)
			return one(p[:10] + "\n" + p[10:])
		}, reasonNotJWS),
		bad("non-canonical base64 trailing bits", func(t *testing.T) []string {
			p := craft(t, k.ec, "ES256", nil, nil, nil)
			return one(p[:len(p)-1] + string(flipLowBits(p[len(p)-1])))
		}, reasonNotJWS),
		bad("alg none unsigned", func(t *testing.T) []string { return one(craft(t, k.ec, "none", nil, nil, nil)) }, reasonNotJWS),

		// Rule 2: the JOSE header.
		bad("header not an object", func(t *testing.T) []string {
			return one(craftRaw(t, []any{"dpop+jwt"}, defaultClaims(), "ES256", k.ec))
		}, reasonHeader),
		bad("typ missing", hdrES(map[string]any{"typ": del}), reasonTyp),
		bad("typ jwt", hdrES(map[string]any{"typ": "JWT"}), reasonTyp),
		bad("typ at+jwt", hdrES(map[string]any{"typ": "at+jwt"}), reasonTyp),
		bad("typ with a parameter", hdrES(map[string]any{"typ": "dpop+jwt; x=y"}), reasonTyp),
		bad("typ not a string", hdrES(map[string]any{"typ": []string{"dpop+jwt"}}), reasonTyp),
		bad("alg none with a signature", func(t *testing.T) []string {
			return one(craft(t, k.ec, "ES256", map[string]any{"alg": "none"}, nil, nil))
		}, reasonAlg),
		bad("alg HS256 with a symmetric jwk", func(t *testing.T) []string {
			secret := []byte("0123456789abcdef0123456789abcdef")
			h := map[string]any{"jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(secret)}}
			return one(craft(t, secret, "HS256", h, nil, nil))
		}, reasonAlg),
		bad("alg missing", hdrES(map[string]any{"alg": del}), reasonAlg),
		bad("alg in lowercase", hdrES(map[string]any{"alg": "es256"}), reasonAlg),
		bad("alg RS256 not in the default list", func(t *testing.T) []string { return one(signJWX(t, k.rsa, "RS256", nil)) }, reasonAlg),
		bad("alg ES384 not in the default list", func(t *testing.T) []string { return one(signJWX(t, k.ec384, "ES384", nil)) }, reasonAlg),
		bad("crit", hdrES(map[string]any{"crit": []string{"exp"}, "exp": 1}), reasonCrit),
		bad("b64", hdrES(map[string]any{"b64": false}), reasonCrit),
		bad("jku", hdrES(map[string]any{"jku": "https://attacker.example/jwks"}), reasonKeyReference),
		bad("x5u", hdrES(map[string]any{"x5u": "https://attacker.example/cert"}), reasonKeyReference),
		bad("x5c", hdrES(map[string]any{"x5c": []string{"MIIB"}}), reasonKeyReference),
		bad("jwk missing", hdrES(map[string]any{"jwk": del}), reasonJWKMissing),
		bad("jwk not an object", hdrES(map[string]any{"jwk": "eyJrdHkiOiJFQyJ9"}), reasonJWKMissing),
		bad("jwk null", hdrES(map[string]any{"jwk": nil}), reasonJWKMissing),
		bad("jwk with the private key d", func(t *testing.T) []string {
			return one(craft(t, k.ec, "ES256", map[string]any{"jwk": jwkOf(t, k.ec, true)}, nil, nil))
		}, reasonJWKPrivate),
		bad("rsa jwk with private members", func(t *testing.T) []string {
			return one(craft(t, k.rsa, "PS256", map[string]any{"jwk": jwkOf(t, k.rsa, true)}, nil, nil))
		}, reasonJWKPrivate),
		bad("ed25519 jwk with d", func(t *testing.T) []string {
			return one(craft(t, k.ed, "EdDSA", map[string]any{"jwk": jwkOf(t, k.ed, true)}, nil, nil))
		}, reasonJWKPrivate),
		bad("jwk with a symmetric k", jwkES(func(m map[string]any) { m["k"] = "AAAA" }), reasonJWKPrivate),
		bad("EC key with EdDSA", func(t *testing.T) []string {
			return one(craft(t, k.ed, "EdDSA", map[string]any{"jwk": jwkOf(t, k.ec, false)}, nil, nil))
		}, reasonJWKType),
		bad("OKP key with ES256", func(t *testing.T) []string {
			return one(craft(t, k.ec, "ES256", map[string]any{"jwk": jwkOf(t, k.ed, false)}, nil, nil))
		}, reasonJWKType),
		bad("RSA key with ES256", func(t *testing.T) []string {
			return one(craft(t, k.ec, "ES256", map[string]any{"jwk": jwkOf(t, k.rsa, false)}, nil, nil))
		}, reasonJWKType),
		bad("P-384 key with ES256", func(t *testing.T) []string {
			return one(craft(t, k.ec384, "ES256", nil, nil, k.ec))
		}, reasonJWKType),
		bad("kty in lowercase", jwkES(func(m map[string]any) { m["kty"] = "ec" }), reasonJWKType),
		bad("jwk alg is another", jwkES(func(m map[string]any) { m["alg"] = "ES384" }), reasonJWKUsage),
		bad("jwk use enc", jwkES(func(m map[string]any) { m["use"] = "enc" }), reasonJWKUsage),
		bad("jwk key_ops without verify", jwkES(func(m map[string]any) { m["key_ops"] = []string{"encrypt"} }), reasonJWKUsage),
		bad("jwk point not on the curve", jwkES(func(m map[string]any) {
			x, _ := base64.RawURLEncoding.DecodeString(m["x"].(string))
			x[31] ^= 1
			m["x"] = base64.RawURLEncoding.EncodeToString(x)
		}), reasonJWKInvalid),
		bad("jwk coordinate too short", jwkES(func(m map[string]any) {
			x, _ := base64.RawURLEncoding.DecodeString(m["x"].(string))
			m["x"] = base64.RawURLEncoding.EncodeToString(x[1:])
		}), reasonJWKInvalid),
		bad("jwk coordinate padded", jwkES(func(m map[string]any) { m["x"] = m["x"].(string) + "=" }), reasonJWKInvalid),
		bad("jwk y missing", jwkES(func(m map[string]any) { delete(m, "y") }), reasonJWKInvalid),
		bad("rsa modulus with a leading zero", func(t *testing.T) []string {
			j := jwkOf(t, k.rsa, false)
			n, _ := base64.RawURLEncoding.DecodeString(j["n"].(string))
			j["n"] = base64.RawURLEncoding.EncodeToString(append([]byte{0}, n...))
			return one(craft(t, k.rsa, "PS256", map[string]any{"jwk": j}, nil, nil))
		}, reasonJWKInvalid),
		bad("rsa even exponent", func(t *testing.T) []string {
			j := jwkOf(t, k.rsa, false)
			j["e"] = "AQAA"
			return one(craft(t, k.rsa, "PS256", map[string]any{"jwk": j}, nil, nil))
		}, reasonJWKInvalid),
		bad("RSA 1024 refused", func(t *testing.T) []string { return one(signJWX(t, k.rsa1024, "PS256", nil)) }, reasonRSASize),

		// Rule 3: the signature, by the embedded key.
		bad("signed by another key", func(t *testing.T) []string { return one(craft(t, k.ec, "ES256", nil, nil, k.ec2)) }, reasonSignature),
		bad("payload changed after signing", func(t *testing.T) []string {
			p := craft(t, k.ec, "ES256", nil, nil, nil)
			other := craft(t, k.ec, "ES256", nil, map[string]any{"htm": "GET"}, nil)
			parts, otherParts := strings.Split(p, "."), strings.Split(other, ".")
			return one(parts[0] + "." + otherParts[1] + "." + parts[2])
		}, reasonSignature),
		bad("EdDSA signed by another key", func(t *testing.T) []string {
			_, other := testEd25519(t)
			return one(craft(t, k.ed, "EdDSA", nil, nil, other))
		}, reasonSignature),
		bad("PS256 header, RS256 signature", func(t *testing.T) []string {
			p := craft(t, k.rsa, "RS256", map[string]any{"alg": "PS256"}, nil, nil)
			return one(p)
		}, reasonSignature),
		bad("ES256 signature in ASN.1", func(t *testing.T) []string {
			return one(asn1Signed(t, craft(t, k.ec, "ES256", nil, nil, nil)))
		}, reasonSignature),

		// Rule 4: the claims.
		bad("payload not an object", func(t *testing.T) []string {
			h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkOf(t, k.ec, false)}
			return one(craftRaw(t, h, []byte("[1]"), "ES256", k.ec))
		}, reasonPayload),
		bad("payload null", func(t *testing.T) []string {
			h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkOf(t, k.ec, false)}
			return one(craftRaw(t, h, []byte("null"), "ES256", k.ec))
		}, reasonPayload),
		bad("jti missing", okES(map[string]any{"jti": del}), reasonJTI),
		bad("jti empty", okES(map[string]any{"jti": ""}), reasonJTI),
		bad("jti a number", okES(map[string]any{"jti": 12345}), reasonJTI),
		bad("jti too long", okES(map[string]any{"jti": strings.Repeat("j", maxJTILen+1)}), reasonJTI),
		bad("htm other method", okES(map[string]any{"htm": "GET"}), reasonHTM),
		bad("htm in lowercase", okES(map[string]any{"htm": "post"}), reasonHTM),
		bad("htm missing", okES(map[string]any{"htm": del}), reasonHTM),
		bad("htu other host", htu("https://evil.example.com/mcp"), reasonHTU),
		bad("htu other port", htu("https://mcp.example.com:8443/mcp"), reasonHTU),
		bad("htu other scheme", htu("http://mcp.example.com/mcp"), reasonHTU),
		bad("htu other path", htu("https://mcp.example.com/other"), reasonHTU),
		bad("htu trailing slash", htu("https://mcp.example.com/mcp/"), reasonHTU),
		bad("htu path case", htu("https://mcp.example.com/MCP"), reasonHTU),
		bad("htu subdomain", htu("https://a.mcp.example.com/mcp"), reasonHTU),
		bad("htu encoded slash", htu("https://mcp.example.com%2Fmcp"), reasonHTU),
		bad("htu encoded slash in the path", htu("https://mcp.example.com/%2Fmcp"), reasonHTU),
		bad("htu missing", okES(map[string]any{"htu": del}), reasonHTUInvalid),
		bad("htu relative", htu("/mcp"), reasonHTUInvalid),
		bad("htu with userinfo", htu("https://user@mcp.example.com/mcp"), reasonHTUInvalid),
		bad("htu other scheme entirely", htu("wss://mcp.example.com/mcp"), reasonHTUInvalid),
		bad("htu with a space", htu("https://mcp.example.com/m cp"), reasonHTUInvalid),
		bad("iat too old", okES(map[string]any{"iat": testNow.Add(-DefaultMaxAge - time.Second).Unix()}), reasonIATOld),
		bad("iat in the future", okES(map[string]any{"iat": testNow.Add(DefaultLeeway + time.Second).Unix()}), reasonIATFuture),
		bad("iat far in the future", okES(map[string]any{"iat": int64(maxIAT)}), reasonIATFuture),
		bad("iat missing", okES(map[string]any{"iat": del}), reasonIATInvalid),
		bad("iat a string", okES(map[string]any{"iat": "1760000000"}), reasonIATInvalid),
		bad("iat negative", okES(map[string]any{"iat": -1}), reasonIATInvalid),
		bad("iat beyond 9999", okES(map[string]any{"iat": 1e300}), reasonIATInvalid),
		bad("iat null", okES(map[string]any{"iat": nil}), reasonIATInvalid),
		{name: "iat older than a configured max age", proof: okES(map[string]any{"iat": testNow.Add(-11 * time.Second).Unix()}),
			cfg: func(c *Config) { c.MaxAge = 10 * time.Second }, code: CodeInvalidProof, reason: reasonIATOld},
		{name: "iat beyond a configured leeway", proof: okES(map[string]any{"iat": testNow.Add(2 * time.Second).Unix()}),
			cfg: func(c *Config) { c.Leeway = time.Second }, code: CodeInvalidProof, reason: reasonIATFuture},
		bad("ath missing", okES(map[string]any{"ath": del}), reasonATHMissing),
		bad("ath of another token", okES(map[string]any{"ath": athOf("another-token")}), reasonATH),
		bad("ath of the token, padded", okES(map[string]any{"ath": athOf(testToken) + "="}), reasonATH),
		bad("ath not a string", okES(map[string]any{"ath": 1}), reasonATH),
		bad("ath hex instead of base64url", okES(map[string]any{"ath": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}), reasonATH),
	}
}

func TestVerify(t *testing.T) {
	for _, tc := range verifyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			v := newTestVerifier(t, cfg)
			req := testRequest()
			if tc.req != nil {
				tc.req(&req)
			}
			values := tc.proof(t)
			p, err := v.Verify(context.Background(), values, req)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if want := jwxThumbprint(t, tc.key); p.Thumbprint != want {
					t.Errorf("Thumbprint = %q, want jwx's %q", p.Thumbprint, want)
				}
				if p.JTI == "" || p.IssuedAt.IsZero() {
					t.Errorf("Proof = %+v: JTI and IssuedAt must be set", p)
				}
				return
			}
			checkError(t, err, tc.code, tc.reason, false)
			checkNoEcho(t, err, values, req)
		})
	}
}

// checkError checks that err is an *Error with code, reason and replay.
func checkError(t *testing.T, err error, code, reason string, replay bool) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if e.Code != code || e.Reason != reason || e.Replay != replay {
		t.Fatalf("err = {%s, %q, replay %v}, want {%s, %q, replay %v}", e.Code, e.Reason, e.Replay, code, reason, replay)
	}
}

// checkNoEcho checks that the error message repeats nothing of the
// proof's segments, the token or the URL (rule 6). Every reason is a
// constant, so this guards against a message ever being built from input.
func checkNoEcho(t *testing.T, err error, values []string, req Request) {
	t.Helper()
	msg := err.Error()
	secrets := []string{req.AccessToken, req.URL, "jti-"}
	for _, v := range values {
		secrets = append(secrets, strings.Split(v, ".")...)
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(msg, s) {
			t.Errorf("error %q contains input %q", msg, s)
		}
	}
}

// flipLowBits changes a base64url character into another that differs in
// its two low bits only: the last character of an ES256 signature (64
// bytes) carries four unused bits, so the result decodes to the same bytes
// unless the decoder is strict.
func flipLowBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

// TestVerifyRFC9449Example verifies the proof of RFC 9449 figure 13 with
// the access token of that example, at the instant it was made: an
// independent client's proof, and the thumbprint of figure 8.
func TestVerifyRFC9449Example(t *testing.T) {
	const (
		proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19" +
			".eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9" +
			".2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
		token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
		jkt   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	)
	made := time.Unix(1562262618, 0)
	v := newTestVerifier(t, Config{Now: func() time.Time { return made }})
	req := Request{Method: "GET", URL: "https://resource.example.org/protectedresource", AccessToken: token}
	p, err := v.Verify(context.Background(), []string{proof}, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.Thumbprint != jkt || p.JTI != "e1j3V_bKic8-LAEB" || !p.IssuedAt.Equal(made) {
		t.Errorf("Proof = %+v, want thumbprint %s, jti e1j3V_bKic8-LAEB, iat %v", p, jkt, made)
	}
	// The same proof again is a replay.
	_, err = v.Verify(context.Background(), []string{proof}, req)
	checkError(t, err, CodeInvalidProof, reasonReplay, true)
}

func TestVerifyReplay(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{})
	ctx := context.Background()

	first := craft(t, k.ec, "ES256", nil, map[string]any{"jti": "shared-jti"}, nil)
	if _, err := v.Verify(ctx, one(first), testRequest()); err != nil {
		t.Fatalf("first use: %v", err)
	}
	// The same proof, and another proof with the same jti and key.
	_, err := v.Verify(ctx, one(first), testRequest())
	checkError(t, err, CodeInvalidProof, reasonReplay, true)
	again := craft(t, k.ec, "ES256", nil, map[string]any{"jti": "shared-jti", "iat": testNow.Unix() - 1}, nil)
	_, err = v.Verify(ctx, one(again), testRequest())
	checkError(t, err, CodeInvalidProof, reasonReplay, true)
	if strings.Contains(err.Error(), "shared-jti") {
		t.Errorf("error %q contains the jti", err)
	}

	// Another key may use the same jti: jti values are unique per key.
	for _, other := range []struct {
		key any
		alg string
	}{{k.ec2, "ES256"}, {k.ed, "EdDSA"}} {
		p := craft(t, other.key, other.alg, nil, map[string]any{"jti": "shared-jti"}, nil)
		if _, err := v.Verify(ctx, one(p), testRequest()); err != nil {
			t.Errorf("same jti, another key (%s): %v", other.alg, err)
		}
	}
}

// TestVerifyReplayNotBurnedByRejects: a proof refused for another reason
// does not record its jti, and one without a valid signature never
// reaches the cache at all.
func TestVerifyReplayNotBurnedByRejects(t *testing.T) {
	k := testKeys(t)
	var calls int
	cache := countingCache{ReplayCache: newMemoryReplayCache(10, func() time.Time { return testNow }), calls: &calls}
	v := newTestVerifier(t, Config{Replay: cache})
	ctx := context.Background()
	rejects := []string{
		craft(t, k.ec, "ES256", nil, map[string]any{"jti": "j1", "htm": "GET"}, nil),
		craft(t, k.ec, "ES256", nil, map[string]any{"jti": "j1", "ath": del}, nil),
		craft(t, k.ec, "ES256", nil, map[string]any{"jti": "j1"}, k.ec2),
		"garbage.garbage.garbage",
	}
	for _, p := range rejects {
		if _, err := v.Verify(ctx, one(p), testRequest()); err == nil {
			t.Fatal("a bad proof was accepted")
		}
	}
	if calls != 0 {
		t.Errorf("the replay cache was consulted %d times for rejected proofs", calls)
	}
	if _, err := v.Verify(ctx, one(craft(t, k.ec, "ES256", nil, map[string]any{"jti": "j1"}, nil)), testRequest()); err != nil {
		t.Errorf("a valid proof with the jti of rejected ones: %v", err)
	}
}

type countingCache struct {
	ReplayCache
	calls *int
}

func (c countingCache) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	*c.calls++
	return c.ReplayCache.Seen(ctx, key, until)
}

// TestVerifyReplayWindow checks the until passed to the cache and its key.
func TestVerifyReplayWindow(t *testing.T) {
	k := testKeys(t)
	var gotKey string
	var gotUntil time.Time
	cache := recordingCache(func(key string, until time.Time) { gotKey, gotUntil = key, until })
	v := newTestVerifier(t, Config{Replay: cache, MaxAge: 30 * time.Second, Leeway: 2 * time.Second})
	iat := testNow.Add(-3 * time.Second)
	p := craft(t, k.ec, "ES256", nil, map[string]any{"jti": "the-jti", "iat": iat.Unix()}, nil)
	if _, err := v.Verify(context.Background(), one(p), testRequest()); err != nil {
		t.Fatal(err)
	}
	if want := iat.Add(32 * time.Second); !gotUntil.Equal(want) {
		t.Errorf("until = %v, want iat + MaxAge + Leeway = %v", gotUntil, want)
	}
	if want := replayKey(jwxThumbprint(t, k.ec), "the-jti"); gotKey != want || len(gotKey) != 64 || strings.Contains(gotKey, "jti") {
		t.Errorf("key = %q, want %q (hex SHA-256, no jti in clear)", gotKey, want)
	}
}

type recordingCache func(key string, until time.Time)

func (f recordingCache) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	f(key, until)
	return false, nil
}

func TestVerifyReplayCacheFailure(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{Replay: failingCache{err: errStoreDown}})
	_, err := v.Verify(context.Background(), one(craft(t, k.ec, "ES256", nil, nil, nil)), testRequest())
	checkError(t, err, CodeInvalidProof, reasonReplayFailure, false)
	if !errors.Is(err, errStoreDown) {
		t.Errorf("errors.Is(err, cause) = false: the cache's error must be kept for the caller")
	}
	if strings.Contains(err.Error(), errStoreDown.Error()) {
		t.Errorf("message %q prints the cache's error", err)
	}
}

func TestVerifyMemoryCacheFullFailsClosed(t *testing.T) {
	k := testKeys(t)
	now := testNow
	clock := func() time.Time { return now }
	v := newTestVerifier(t, Config{Replay: newMemoryReplayCache(2, clock), Now: clock})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(ctx, one(craft(t, k.ec, "ES256", nil, nil, nil)), testRequest()); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	_, err := v.Verify(ctx, one(craft(t, k.ec, "ES256", nil, nil, nil)), testRequest())
	checkError(t, err, CodeInvalidProof, reasonReplayFailure, false)
	if !errors.Is(err, errReplayCacheFull) {
		t.Errorf("err = %v, want the cache-full cause", err)
	}
	// Once the first entries expire, proofs are accepted again.
	now = now.Add(DefaultMaxAge + DefaultLeeway + time.Second)
	p := craft(t, k.ec, "ES256", nil, map[string]any{"iat": now.Unix()}, nil)
	if _, err := v.Verify(ctx, one(p), testRequest()); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

func TestVerifyBadRequest(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{})
	p := craft(t, k.ec, "ES256", nil, nil, nil)
	for _, req := range []Request{
		{Method: "", URL: testURL},
		{Method: "POST", URL: ""},
		{Method: "POST", URL: "/mcp"},
		{Method: "POST", URL: "mcp.example.com/mcp"},
	} {
		_, err := v.Verify(context.Background(), one(p), req)
		var e *Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("Request %+v: err = %v, want a non-*Error (a gateway fault)", req, err)
		}
	}
}

// TestVerifyOrder: signature before claims, claims before the nonce, so
// that the code says what the client must do.
func TestVerifyOrder(t *testing.T) {
	k := testKeys(t)
	ns := NewNonceSource(testNonceKey, 0)
	v := newTestVerifier(t, Config{Nonces: ns})
	ctx := context.Background()
	// No nonce and a bad signature: invalid, not "get a nonce".
	_, err := v.Verify(ctx, one(craft(t, k.ec, "ES256", nil, nil, k.ec2)), testRequest())
	checkError(t, err, CodeInvalidProof, reasonSignature, false)
	// No nonce and a wrong htm: invalid.
	_, err = v.Verify(ctx, one(craft(t, k.ec, "ES256", nil, map[string]any{"htm": "GET"}, nil)), testRequest())
	checkError(t, err, CodeInvalidProof, reasonHTM, false)
}

// testEd25519 returns a fresh Ed25519 key pair.
func testEd25519(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// asn1Signed re-signs an ES256 proof of testKeys' ec key with an ASN.1
// DER signature, the encoding of X.509 rather than JWS (RFC 7518 §3.4).
func asn1Signed(t *testing.T, proof string) string {
	t.Helper()
	input := proof[:strings.LastIndexByte(proof, '.')]
	digest := sha256.Sum256([]byte(input))
	sig, err := ecdsa.SignASN1(rand.Reader, testKeys(t).ec, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Code: CodeUseNonce, Reason: reasonNonceMissing}
	if got, want := e.Error(), "dpop: use_dpop_nonce: nonce is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if e.Unwrap() != nil {
		t.Error("Unwrap of an error without cause must be nil")
	}
}
