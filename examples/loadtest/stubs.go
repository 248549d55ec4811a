package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// serveOn serves h on ln and returns a function that stops it.
func serveOn(ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}

// stubAS is a Curity-style authorization server: every POST to
// /introspect/<name> answers 200 application/jwt with the same signed
// ~1 KiB access-token JWT (every token is active), after a configurable
// latency. Calls are counted per <name>, so each gateway route (and so
// each scenario) has its own count. /jwks serves the public key.
type stubAS struct {
	latency atomic.Int64 // nanoseconds
	// inactive makes every token inactive (204): (e) re-runs with it so
	// that a token missing from the cache is refused and not cached again,
	// which would evict the entries being counted.
	inactive atomic.Bool
	calls    map[string]*atomic.Int64
	jwt      string
	jwks     []byte
	issuer   string
}

// asRoutes are the introspection paths the gateway routes use.
var asRoutes = []string{"hit", "miss", "mem", "fleet"}

// newStubAS makes the AS and its one JWT, padded to about jwtBytes
// (never shorter than its claims and RS256 signature, about 650 bytes).
func newStubAS(issuer, audience string, jwtBytes int) (*stubAS, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	as := &stubAS{calls: map[string]*atomic.Int64{}, issuer: issuer}
	for _, r := range asRoutes {
		as.calls[r] = new(atomic.Int64)
	}
	enc := base64.RawURLEncoding.EncodeToString
	as.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "loadtest-1", "alg": "RS256", "use": "sig",
		"n": enc(key.N.Bytes()), "e": enc(big.NewInt(int64(key.E)).Bytes()),
	}}})
	now := time.Now()
	claims := map[string]any{
		"iss": issuer, "sub": "loadtest-user", "client_id": "loadtest-agent", "aud": audience,
		"scope": "mcp:tools openid", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"jti": "loadtest-jti-0001",
	}
	// Pad the claims so the whole JWT is about jwtBytes (by default
	// 1 KiB, the size of a typical AS-issued access token with a few
	// custom claims).
	head := enc([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"loadtest-1"}`))
	payload, _ := json.Marshal(claims)
	const sigLen = 342
	target := jwtBytes
	if pad := (target-len(head)-sigLen-2)*3/4 - len(payload) - len(`,"pad":""`); pad > 0 {
		claims["pad"] = strings.Repeat("p", pad)
		payload, _ = json.Marshal(claims)
	}
	signingInput := head + "." + enc(payload)
	sum := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	as.jwt = signingInput + "." + enc(sig)
	return as, nil
}

func (as *stubAS) setLatency(d time.Duration) { as.latency.Store(int64(d)) }

func (as *stubAS) callCount(route string) int64 { return as.calls[route].Load() }

func (as *stubAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/jwks" {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(as.jwks)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/introspect/")
	counter := as.calls[name]
	if !ok || counter == nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	counter.Add(1)
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
	if d := time.Duration(as.latency.Load()); d > 0 {
		time.Sleep(d)
	}
	if as.inactive.Load() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.Header().Set("Content-Length", fmt.Sprint(len(as.jwt)))
	_, _ = io.WriteString(w, as.jwt)
}
