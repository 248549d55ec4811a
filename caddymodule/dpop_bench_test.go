package caddymodule

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// BenchmarkServeHTTPHitDPoP compares, in one run, the plain Bearer hit
// with a DPoP hit: the same cached token presented as "DPoP" with a fresh
// ES256 proof each time (verified, jti recorded in the process's replay
// cache, key checked against cnf.jkt). Signing the proofs is the client's
// cost and stays out of the timer.
func BenchmarkServeHTTPHitDPoP(b *testing.B) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := jwk.FromRaw(raw)
	pub, _ := priv.PublicKey()
	tp, _ := pub.Thumbprint(crypto.SHA256)
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	const token = "opaque-bench-token-dpop"

	b.Run("bearer_unbound", func(b *testing.B) {
		h, _ := benchHandler(b)
		br := newBenchRequest(false)
		br.serve(b, h, "Bearer "+token)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			br.serve(b, h, "Bearer "+token)
		}
	})
	b.Run("dpop_es256", func(b *testing.B) {
		// A fresh AS and handler each time the framework runs this.
		as, asCalls := dpopBenchAS(b, jkt)
		h, calls := benchHandlerWith(b, func(h *Handler) {
			h.IntrospectionEndpoint = as.URL + "/introspect"
			h.DPoP = &DPoPConfig{}
		})
		br := newBenchRequest(false)
		sum := sha256.Sum256([]byte(token))
		ath := base64.RawURLEncoding.EncodeToString(sum[:])
		n := 0
		proof := func() string {
			n++
			payload := `{"jti":"bench-` + strconv.Itoa(n) + `-` + strconv.FormatInt(time.Now().UnixNano(), 36) +
				`","htm":"GET","htu":"` + benchResource + `","iat":` + strconv.FormatInt(time.Now().Unix(), 10) + `,"ath":"` + ath + `"}`
			hdrs := jws.NewHeaders()
			_ = hdrs.Set(jws.TypeKey, "dpop+jwt")
			_ = hdrs.Set(jws.JWKKey, pub)
			signed, err := jws.Sign([]byte(payload), jws.WithKey(jwa.ES256, priv, jws.WithProtectedHeaders(hdrs)))
			if err != nil {
				b.Fatal(err)
			}
			return string(signed)
		}
		serve := func(p string) {
			br.r.Header["Authorization"] = []string{"DPoP " + token}
			br.r.Header["Dpop"] = []string{p}
			if err := h.ServeHTTP(br.w, br.r, noopNext); err != nil {
				b.Fatalf("ServeHTTP: %v", err)
			}
			if br.r.Header["Authorization"][0][:7] != "Bearer " {
				b.Fatal("the request was not forwarded with the JWT")
			}
		}
		serve(proof()) // the miss that warms the cache
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			p := proof()
			b.StartTimer()
			serve(p)
		}
		b.StopTimer()
		if calls.Load() != 0 || asCalls.Load() != 1 {
			b.Fatalf("AS calls %d, want 1: the loop must only hit", asCalls.Load())
		}
	})
}

// dpopBenchAS is benchAS with the token bound to jkt.
func dpopBenchAS(tb testing.TB, jkt string) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	exp := time.Now().Add(24 * time.Hour).Unix()
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://as.example.com", "sub": "bench-user", "client_id": "agent", "aud": benchResource,
		"scope": "mcp:tools openid profile", "exp": exp, "iat": time.Now().Unix(), "jti": "jti-dpop",
		"cnf": map[string]any{"jkt": jkt}, "pad": strings.Repeat("x", 300),
	})
	jwt := enc([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"bench-1"}`)) + "." + enc(claims) + "." + enc(make([]byte, 256))
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = io.WriteString(w, jwt)
	}))
	tb.Cleanup(srv.Close)
	return srv, &calls
}
