package introspect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// jwksServer serves a swappable JWKS document and counts fetches.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int32
	mu     sync.Mutex
	body   []byte
	status int
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func newTestVerifier(t testing.TB, uri string) *JWKSVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := NewJWKSVerifier(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWKSVerifierSignatures(t *testing.T) {
	testKeys(t)
	claims := map[string]any{"sub": "alice", "iss": testIssuer}
	set := keySetJSON(t,
		publicJWK(t, rsaKey1, "rsa1", "RS256"),
		publicJWK(t, rsaKey2, "rsa2", ""), // no alg: PS*/RS* both allowed
		publicJWK(t, ecKey, "ec1", ""),
		publicJWK(t, edKey, "ed1", "EdDSA"),
	)
	srv := newJWKSServer(t, set)
	v := newTestVerifier(t, srv.URL)

	tests := []struct {
		name string
		jwt  string
		want ErrorKind // 0 = valid
	}{
		{"RS256 valid", signJWT(t, "RS256", rsaKey1, "rsa1", claims, nil), 0},
		{"RS512 with alg-less key", signJWT(t, "RS512", rsaKey2, "rsa2", claims, nil), 0},
		{"PS256 with alg-less key", signJWT(t, "PS256", rsaKey2, "rsa2", claims, nil), 0},
		{"ES256 valid", signJWT(t, "ES256", ecKey, "ec1", claims, nil), 0},
		{"EdDSA valid", signJWT(t, "EdDSA", edKey, "ed1", claims, nil), 0},
		{"no kid tries keys of the right type", signJWT(t, "ES256", ecKey, "", claims, nil), 0},
		{"wrong key for kid", signJWT(t, "RS256", rsaKey2, "rsa1", claims, nil), KindBadResponse},
		{"key alg RS256 but jwt says PS256", signJWT(t, "PS256", rsaKey1, "rsa1", claims, nil), KindBadResponse},
		{"HS256 never accepted", signJWT(t, "HS256", []byte("0123456789abcdef0123456789abcdef"), "rsa1", claims, nil), KindBadResponse},
		{"alg none", rawJWS(`{"alg":"none","kid":"rsa1"}`, `{"sub":"alice"}`, "c2ln"), KindBadResponse},
		{"alg none empty signature", rawJWS(`{"alg":"none"}`, `{"sub":"alice"}`, ""), KindBadResponse},
		{"unknown alg", rawJWS(`{"alg":"RS1","kid":"rsa1"}`, `{"sub":"alice"}`, "c2ln"), KindBadResponse},
		{"tampered payload", func() string {
			j := signJWT(t, "RS256", rsaKey1, "rsa1", claims, nil)
			return rawJWS(`{"alg":"RS256","kid":"rsa1"}`, `{"sub":"mallory"}`, j[len(j)-20:])
		}(), KindBadResponse},
		{"not a jws", "abc.def", KindBadResponse},
		{"kid not a string", rawJWS(`{"alg":"RS256","kid":7}`, `{}`, "c2ln"), KindBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(t.Context(), []byte(tt.jwt))
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantKind(t, err, tt.want, -1, tt.jwt)
		})
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (cached)", n)
	}
}

// An HS256 JWT must fail even when the JWKS holds the very secret as an
// "oct" key: symmetric algorithms are off the allow-list.
func TestJWKSVerifierRejectsHSEvenWithOctKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	oct, err := jwk.FromRaw(secret)
	if err != nil {
		t.Fatal(err)
	}
	_ = oct.Set(jwk.KeyIDKey, "k")
	srv := newJWKSServer(t, keySetJSON(t, oct))
	v := newTestVerifier(t, srv.URL)
	jwt := signJWT(t, "HS256", secret, "k", map[string]any{"sub": "x"}, nil)
	wantKind(t, v.Verify(t.Context(), []byte(jwt)), KindBadResponse, -1, jwt)
}

func TestJWKSVerifierLazyAndCached(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "rsa1", "")))
	v := newTestVerifier(t, srv.URL)
	time.Sleep(50 * time.Millisecond)
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("JWKS fetched %d times before first Verify", n)
	}
	jwt := []byte(signJWT(t, "RS256", rsaKey1, "rsa1", map[string]any{"sub": "a"}, nil))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Verify(t.Context(), jwt); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
}

func TestJWKSVerifierUnknownKidRefetch(t *testing.T) {
	testKeys(t)
	k1 := publicJWK(t, rsaKey1, "old", "")
	k2 := publicJWK(t, rsaKey2, "new", "")
	srv := newJWKSServer(t, keySetJSON(t, k1))
	v := newTestVerifier(t, srv.URL)
	v.forcedMinGap = 0 // allow the forced refresh right after the first fetch

	old := []byte(signJWT(t, "RS256", rsaKey1, "old", map[string]any{}, nil))
	if err := v.Verify(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	// The AS rotates: the new kid is unknown to the cached set.
	srv.set(http.StatusOK, keySetJSON(t, k1, k2))
	rotated := []byte(signJWT(t, "RS256", rsaKey2, "new", map[string]any{}, nil))
	if err := v.Verify(t.Context(), rotated); err != nil {
		t.Fatalf("Verify after rotation: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
	// A known kid does not refetch.
	if err := v.Verify(t.Context(), rotated); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

func TestJWKSVerifierUnknownKidRateLimited(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "old", "")))
	v := newTestVerifier(t, srv.URL) // default 10s gap
	if err := v.Verify(t.Context(), []byte(signJWT(t, "RS256", rsaKey1, "old", map[string]any{}, nil))); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		jwt := signJWT(t, "RS256", rsaKey2, "made-up-"+string(rune('a'+i%26)), map[string]any{}, nil)
		wantKind(t, v.Verify(t.Context(), []byte(jwt)), KindBadResponse, -1, jwt)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (forced refreshes rate-limited)", n)
	}
}

func TestJWKSVerifierFetchFailures(t *testing.T) {
	testKeys(t)
	good := keySetJSON(t, publicJWK(t, ecKey, "ec", ""))
	jwt := []byte(signJWT(t, "ES256", ecKey, "ec", map[string]any{}, nil))

	tests := []struct {
		name   string
		status int
		body   []byte
		kind   ErrorKind
		code   int
	}{
		{"503", http.StatusServiceUnavailable, nil, KindUnavailable, 503},
		{"500", http.StatusInternalServerError, nil, KindBadResponse, 500},
		{"404", http.StatusNotFound, nil, KindBadResponse, 404},
		{"not a key set", http.StatusOK, []byte(`<html>`), KindBadResponse, 200},
		{"oversized", http.StatusOK, make([]byte, jwksMaxBodyBytes+1), KindBadResponse, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, tt.body)
			srv.set(tt.status, tt.body)
			v := newTestVerifier(t, srv.URL)
			wantKind(t, v.Verify(t.Context(), jwt), tt.kind, tt.code)
			// Still failing, within the forced-refresh gap: no new fetch,
			// same classification.
			wantKind(t, v.Verify(t.Context(), jwt), tt.kind, tt.code)
			if n := srv.hits.Load(); n != 1 {
				t.Fatalf("JWKS fetched %d times, want 1", n)
			}
			// The JWKS recovers: after the gap, Verify recovers without
			// waiting for the scheduled refresh.
			srv.set(http.StatusOK, good)
			v.forcedMinGap = 0
			if err := v.Verify(t.Context(), jwt); err != nil {
				t.Fatalf("Verify after recovery: %v", err)
			}
		})
	}
}

func TestJWKSVerifierUnreachable(t *testing.T) {
	testKeys(t)
	v := newTestVerifier(t, "http://"+closedAddr(t)+"/jwks")
	jwt := []byte(signJWT(t, "ES256", ecKey, "ec", map[string]any{}, nil))
	wantKind(t, v.Verify(t.Context(), jwt), KindUnavailable, 0)
}

func TestJWKSVerifierHungServerBoundedByContext(t *testing.T) {
	testKeys(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	v := newTestVerifier(t, srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	jwt := []byte(signJWT(t, "ES256", ecKey, "ec", map[string]any{}, nil))
	wantKind(t, v.Verify(ctx, jwt), KindUnavailable, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Verify took %s despite a 100ms deadline", d)
	}
}

// Cancelling the verifier's context (a config reload) stops its background
// refresher and releases its connections, but never fails a Verify: the
// last good set stays in use, and no goroutine is left behind.
func TestJWKSVerifierStopKeepsVerifying(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, keySetJSON(t, publicJWK(t, ecKey, "ec", "")))
	jwt := []byte(signJWT(t, "ES256", ecKey, "ec", map[string]any{}, nil))

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	v, err := NewJWKSVerifier(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(t.Context(), jwt); err != nil {
		t.Fatal(err)
	}
	// The refresher runs (by its stack: a goroutine count can be
	// offset by other tests' goroutines ending meanwhile).
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(allStacks(), "(*JWKSVerifier).refreshLoop"); {
		if time.Now().After(deadline) {
			t.Fatalf("expected the background refresher to run; goroutines:\n%s", allStacks())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := v.Verify(t.Context(), jwt); err != nil {
		t.Fatalf("Verify after stop: %v", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (the last good set serves)", n)
	}
	waitGoroutines(t, srv, before)
}

// A verifier stopped before it ever fetched (its handler cleaned up while a
// request it served was still in flight) still fetches for that request.
func TestJWKSVerifierStoppedBeforeFirstFetch(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, keySetJSON(t, publicJWK(t, ecKey, "ec", "")))
	jwt := []byte(signJWT(t, "ES256", ecKey, "ec", map[string]any{}, nil))

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	v, err := NewJWKSVerifier(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := v.Verify(t.Context(), jwt); err != nil {
		t.Fatalf("Verify on a stopped verifier: %v", err)
	}
	waitGoroutines(t, srv, before)
}

// waitGoroutines waits until the goroutine count is back to before, once
// idle keep-alive connections are closed.
func waitGoroutines(t *testing.T, srv *jwksServer, before int) {
	t.Helper()
	srv.Client().CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after stop\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewJWKSVerifierValidation(t *testing.T) {
	for _, uri := range []string{"", "http://jwks.example.com/keys", "not a url", "/keys"} {
		if _, err := NewJWKSVerifier(t.Context(), uri, nil); err == nil {
			t.Errorf("NewJWKSVerifier(%q): want error", uri)
		}
	}
	if _, err := NewJWKSVerifier(nil, "https://as.example.com/jwks", nil); err == nil { //nolint:staticcheck // the nil check is under test
		t.Error("nil context: want error")
	}
}

// allStacks returns every goroutine's stack, untruncated.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
