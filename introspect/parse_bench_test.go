package introspect

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The parse benchmarks measure what the gateway does with an AS reply once
// it has arrived: media type, body read, JSON/JWS parsing, claim reading
// and, where configured, signature verification. They call the format
// handler (handleSuccess) on an in-memory *http.Response, so no HTTP is
// involved; the one exception is the JWKS of the verifying variants,
// fetched once from an httptest server before the timer starts and cached
// from then on. BenchmarkIntrospectHTTP adds the loopback round trip for
// comparison.

// benchClaims are typical access-token claims, padded so the JWT is about
// 1 KiB like the tokens of real authorization servers.
func benchClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "alice", "client_id": "agent",
		"aud": "https://mcp.example.com/mcp", "scope": "mcp:tools openid profile",
		"exp": fixedNow.Unix() + 3600, "iat": fixedNow.Unix(), "jti": "jti-0123456789",
		"pad": strings.Repeat("x", 360),
	}
}

// benchResponse returns a fresh response around body for each call.
type benchResponse struct {
	status int
	ctype  string
	body   string
	rd     strings.Reader
	resp   http.Response
}

func newBenchResponse(status int, ctype, body string) *benchResponse {
	return &benchResponse{status: status, ctype: ctype, body: body}
}

func (br *benchResponse) next() *http.Response {
	br.rd.Reset(br.body)
	br.resp = http.Response{
		StatusCode: br.status,
		Header:     http.Header{"Content-Type": {br.ctype}},
		Body:       io.NopCloser(&br.rd),
	}
	return &br.resp
}

func runParseBench(b *testing.B, c *Client, br *benchResponse) {
	b.Helper()
	ctx := context.Background()
	if res, err := c.handleSuccess(ctx, br.next()); err != nil || !res.Active {
		b.Fatalf("handleSuccess = %+v, %v", res, err) // also warms the JWKS
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.handleSuccess(ctx, br.next()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJSON(b *testing.B) {
	testKeys(b)
	jwt := signJWT(b, "RS256", rsaKey1, "k1", benchClaims(), nil)
	obj := benchClaims()
	obj["active"] = true
	obj["jwt"] = jwt
	body, _ := json.Marshal(obj)

	b.Run("jwt_claim", func(b *testing.B) {
		c := newTestClient(b, "http://127.0.0.1:1/introspect", func(cfg *Config) {
			cfg.Format, cfg.JWTClaim, cfg.Now = FormatJSON, "jwt", fixedClock
		})
		runParseBench(b, c, newBenchResponse(200, "application/json", string(body)))
	})
	b.Run("jwt_claim+verify", func(b *testing.B) {
		jwks := newJWKSServer(b, keySetJSON(b, publicJWK(b, rsaKey1, "k1", "RS256")))
		c := newTestClient(b, "http://127.0.0.1:1/introspect", func(cfg *Config) {
			cfg.Format, cfg.JWTClaim, cfg.Now = FormatJSON, "jwt", fixedClock
			cfg.Verifier = newTestVerifier(b, jwks.URL)
		})
		runParseBench(b, c, newBenchResponse(200, "application/json", string(body)))
	})
	b.Run("no_jwt_claim", func(b *testing.B) {
		delete(obj, "jwt")
		plain, _ := json.Marshal(obj)
		c := newTestClient(b, "http://127.0.0.1:1/introspect", func(cfg *Config) {
			cfg.Format, cfg.Now = FormatJSON, fixedClock
		})
		runParseBench(b, c, newBenchResponse(200, "application/json", string(plain)))
	})
}

// BenchmarkParseJWT is the Curity-style reply: the body is the JWT.
func BenchmarkParseJWT(b *testing.B) {
	testKeys(b)
	jwt := signJWT(b, "RS256", rsaKey1, "k1", benchClaims(), nil)
	b.Run("structural", func(b *testing.B) {
		c := newTestClient(b, "http://127.0.0.1:1/introspect", func(cfg *Config) { cfg.Now = fixedClock })
		runParseBench(b, c, newBenchResponse(200, "application/jwt", jwt))
	})
	b.Run("verify", func(b *testing.B) {
		jwks := newJWKSServer(b, keySetJSON(b, publicJWK(b, rsaKey1, "k1", "RS256")))
		c := newTestClient(b, "http://127.0.0.1:1/introspect", func(cfg *Config) {
			cfg.Now, cfg.Verifier = fixedClock, newTestVerifier(b, jwks.URL)
		})
		runParseBench(b, c, newBenchResponse(200, "application/jwt", jwt))
	})
}

// BenchmarkParseRFC9701 is a signed introspection response (ES256) whose
// token_introspection carries the access-token JWT (RS256) to forward;
// both signatures are verified.
func BenchmarkParseRFC9701(b *testing.B) {
	testKeys(b)
	jwks := newJWKSServer(b, keySetJSON(b, publicJWK(b, rsaKey1, "k1", "RS256"), publicJWK(b, ecKey, "ec1", "")))
	inner := signJWT(b, "RS256", rsaKey1, "k1", benchClaims(), nil)
	reply := signJWT(b, "ES256", ecKey, "ec1", rfc9701Claims(inner), introspectionTyp)
	c := newTestClient(b, "http://127.0.0.1:1/introspect", func(cfg *Config) {
		cfg.Format, cfg.JWTClaim, cfg.Issuer, cfg.Now = FormatRFC9701, "jwt", testIssuer, fixedClock
		cfg.Verifier = newTestVerifier(b, jwks.URL)
	})
	runParseBench(b, c, newBenchResponse(200, ctIntrospectionJWT, reply))
}

// BenchmarkIntrospectHTTP is a whole introspection against a loopback
// httptest AS (Curity style, structural check only): request building,
// client authentication, the round trip and the parse.
func BenchmarkIntrospectHTTP(b *testing.B) {
	testKeys(b)
	jwt := signJWT(b, "RS256", rsaKey1, "k1", benchClaims(), nil)
	as := newFakeAS(b, reply(200, jwt, "Content-Type", "application/jwt"))
	c := newTestClient(b, as.URL, func(cfg *Config) { cfg.Now = fixedClock })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := c.Introspect(ctx, testToken, ""); err != nil || !res.Active {
			b.Fatalf("Introspect = %+v, %v", res, err)
		}
	}
}
