package introspect

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hangingJWKS serves body on the first fetch and hangs every later fetch
// until the test ends: a JWKS endpoint that went slow after the gateway
// had its keys.
func hangingJWKS(t *testing.T, body []byte) (srv *httptest.Server, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	release := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(body)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: unblocks the handler
	return srv, hits
}

// verifyWithin runs Verify under a deadline and reports its error, or fails
// the test when Verify has not returned well after that deadline (the
// refresh it might wait for hangs until the test ends).
func verifyWithin(t *testing.T, v *JWKSVerifier, deadline time.Duration, jwt string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- v.Verify(ctx, []byte(jwt)) }()
	select {
	case err := <-done:
		return err
	case <-time.After(deadline + 3*time.Second):
		t.Fatalf("Verify with a %s deadline has not returned %s later: it waits for the hung refresh", deadline, 3*time.Second)
		return nil
	}
}

// Defect 2: a slow JWKS refresh must not hold up verification. While a
// refresh forced by an unknown kid hangs (its request has a long deadline),
// a known kid is verified from the last good set at once, and another
// unknown kid gives up at its own deadline.
func TestJWKSVerifierSlowRefreshDoesNotBlock(t *testing.T) {
	testKeys(t)
	srv, hits := hangingJWKS(t, keySetJSON(t, publicJWK(t, rsaKey1, "k1", "")))
	v := newTestVerifier(t, srv.URL)
	v.forcedMinGap = 0 // let the unknown kid force a refresh at once

	known := signJWT(t, "RS256", rsaKey1, "k1", map[string]any{}, nil)
	if err := v.Verify(t.Context(), []byte(known)); err != nil {
		t.Fatal(err)
	}

	// A request with a long deadline forces the refresh that hangs.
	unknown := signJWT(t, "RS256", rsaKey2, "rotated", map[string]any{}, nil)
	go func() { _ = v.Verify(t.Context(), []byte(unknown)) }()
	for waited := 0; hits.Load() < 2; waited++ {
		if waited > 500 {
			t.Fatal("the forced refresh never reached the JWKS server")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for range 3 {
		if err := verifyWithin(t, v, 200*time.Millisecond, known); err != nil {
			t.Fatalf("known kid during a hung refresh: %v", err)
		}
	}
	err := verifyWithin(t, v, 200*time.Millisecond, unknown)
	wantKind(t, err, KindUnavailable, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the request's deadline", err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (one refresh at a time)", n)
	}
}

// A failed refresh keeps the last good key set in use.
func TestJWKSVerifierFailedRefreshKeepsLastGoodSet(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "k1", "")))
	v := newTestVerifier(t, srv.URL)
	v.forcedMinGap = 0
	known := []byte(signJWT(t, "RS256", rsaKey1, "k1", map[string]any{}, nil))
	if err := v.Verify(t.Context(), known); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusInternalServerError, nil)
	unknown := []byte(signJWT(t, "RS256", rsaKey2, "k2", map[string]any{}, nil))
	wantKind(t, v.Verify(t.Context(), unknown), KindBadResponse, 500)
	if err := v.Verify(t.Context(), known); err != nil {
		t.Fatalf("known kid after a failed refresh: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

// The background refresher picks up a rotated key set on its schedule,
// without any request forcing a refresh.
func TestJWKSVerifierRefreshesInBackground(t *testing.T) {
	testKeys(t)
	k1 := publicJWK(t, rsaKey1, "k1", "")
	srv := newJWKSServer(t, keySetJSON(t, k1))
	v := newTestVerifier(t, srv.URL)
	v.minRefresh = 20 * time.Millisecond
	v.forcedMinGap = time.Hour // only the schedule may fetch again
	if err := v.Verify(t.Context(), []byte(signJWT(t, "RS256", rsaKey1, "k1", map[string]any{}, nil))); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusOK, keySetJSON(t, k1, publicJWK(t, rsaKey2, "k2", "")))
	rotated := []byte(signJWT(t, "RS256", rsaKey2, "k2", map[string]any{}, nil))
	for waited := 0; v.Verify(t.Context(), rotated) != nil; waited++ {
		if waited > 500 {
			t.Fatalf("the rotated key was never picked up (JWKS fetched %d times)", srv.hits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The JWKS response's max-age schedules the next refresh, within bounds.
func TestJWKSVerifierHonoursMaxAgeWithinBounds(t *testing.T) {
	testKeys(t)
	body := keySetJSON(t, publicJWK(t, rsaKey1, "k1", ""))
	jwt := []byte(signJWT(t, "RS256", rsaKey1, "k1", map[string]any{}, nil))
	for _, tt := range []struct {
		cacheControl string
		want         time.Duration
	}{
		{"", jwksMinRefreshInterval},
		{"max-age=10", jwksMinRefreshInterval},
		{"public, max-age=1200", 20 * time.Minute},
		{"max-age=86400", jwksMaxRefreshInterval},
		{"no-store", jwksMinRefreshInterval},
	} {
		t.Run(tt.cacheControl, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.cacheControl != "" {
					w.Header().Set("Cache-Control", tt.cacheControl)
				}
				_, _ = w.Write(body)
			}))
			t.Cleanup(srv.Close)
			v := newTestVerifier(t, srv.URL)
			start := time.Now()
			if err := v.Verify(t.Context(), jwt); err != nil {
				t.Fatal(err)
			}
			v.mu.Lock()
			due := v.nextDue.Sub(start)
			v.mu.Unlock()
			// due is measured from before the fetch, so it may exceed want
			// by the time the fetch took, never fall short of it.
			if due < tt.want || due > tt.want+time.Minute {
				t.Fatalf("next refresh in %s, want %s", due, tt.want)
			}
		})
	}
}

// Defect 7: what the AS (or whoever answers for the JWKS) chose must not
// appear in an error value.
func TestJWKSVerifierErrorsCarryNoASText(t *testing.T) {
	testKeys(t)
	const asText = "gopher-as-text"

	t.Run("alg", func(t *testing.T) {
		srv := newJWKSServer(t, keySetJSON(t, publicJWK(t, rsaKey1, "k1", "")))
		v := newTestVerifier(t, srv.URL)
		for _, alg := range []string{"RS1", asText, strings.Repeat("A", 40)} {
			jwt := rawJWS(`{"alg":"`+alg+`","kid":"k1"}`, `{}`, "c2ln")
			err := wantKind(t, v.Verify(t.Context(), []byte(jwt)), KindBadResponse, -1)
			if strings.Contains(err.Error(), alg) {
				t.Fatalf("error %q repeats the alg", err)
			}
		}
	})
	t.Run("redirect target", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, asText+"://keys.example/jwks", http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		v := newTestVerifier(t, srv.URL)
		jwt := signJWT(t, "RS256", rsaKey1, "k1", map[string]any{}, nil)
		err := wantKind(t, v.Verify(t.Context(), []byte(jwt)), KindUnavailable, 0)
		if strings.Contains(strings.ToLower(err.Error()), asText) {
			t.Fatalf("error %q repeats the redirect target", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		v := newTestVerifier(t, srv.URL)
		jwt := signJWT(t, "RS256", rsaKey1, "k1", map[string]any{}, nil)
		err := wantKind(t, v.Verify(t.Context(), []byte(jwt)), KindUnavailable, 0)
		if want := "as jwks request failed: tls certificate not accepted"; err.Error() != want {
			t.Fatalf("error %q, want %q", err, want)
		}
	})
}
