package caddymodule

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The hit-path benchmarks call ServeHTTP directly on a provisioned handler
// whose AS is an httptest stub answering Curity-style (a ~1 KiB JWT for
// Accept: application/jwt). Tokens are warmed by one ServeHTTP each, so the
// timed loop sees only cache hits. Run them with
//
//	go test -run '^$' -bench . -benchmem ./caddymodule
//
// and as a CI smoke test with -short -benchtime=1x.

const (
	benchResource = "https://mcp.example.com/mcp"
	// benchManyTokens is the number of distinct warm tokens of the
	// "many tokens" benchmarks.
	benchManyTokens = 100_000
)

// benchJWT builds a structurally valid compact JWS of about 1 KiB: the
// handler is configured without as_jwks_uri, so its signature (random
// bytes of RS256 size) is never checked, only its shape and claims.
func benchJWT(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	exp := time.Now().Add(24 * time.Hour).Unix()
	header := `{"alg":"RS256","typ":"at+jwt","kid":"bench-1"}`
	payload := fmt.Sprintf(`{"iss":"https://as.example.com","sub":%q,"client_id":"agent","aud":%q,`+
		`"scope":"mcp:tools openid profile","exp":%d,"iat":%d,"jti":"jti-%s","pad":"%s"}`,
		sub, benchResource, exp, time.Now().Unix(), sub, strings.Repeat("x", 360))
	sig := make([]byte, 256)
	for i := range sig {
		sig[i] = byte(i * 7)
	}
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

// benchAS is a fast Curity-style AS: every token is active and gets the
// same ~1 KiB JWT (the cache stores one copy per token regardless, since
// each answer is read into its own string).
func benchAS(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	jwt := benchJWT("bench-user")
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

// benchHandler provisions a handler against a fresh stub AS, with the
// per-request work a real route has: the audience check (resource) and a
// required scope. The cache is large enough to hold benchManyTokens.
func benchHandler(tb testing.TB) (*Handler, *atomic.Int64) {
	tb.Helper()
	return benchHandlerWith(tb, nil)
}

// benchHandlerWith is benchHandler with more settings applied by set.
func benchHandlerWith(tb testing.TB, set func(*Handler)) (*Handler, *atomic.Int64) {
	tb.Helper()
	as, calls := benchAS(tb)
	h := &Handler{
		IntrospectionEndpoint: as.URL + "/introspect",
		ClientID:              "gateway",
		ClientSecret:          "s3cret",
		Resource:              benchResource,
		AuthorizationServers:  []string{"https://as.example.com"},
		RequiredScopes:        []string{"mcp:tools"},
		Cache:                 &CacheConfig{MaxSize: 1 << 30},
	}
	if set != nil {
		set(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return h, calls
}

// benchRequest is a request as Caddy's server hands it to a handler: with
// a replacer and the extra-log-fields holder in its context, and, when
// accessLog is true, a server whose access logging is enabled. It is
// reused across iterations (Caddy's per-request setup is not ours to
// measure); only the Authorization value is reset before each call.
type benchRequest struct {
	r *http.Request
	w http.ResponseWriter
}

func newBenchRequest(accessLog bool) *benchRequest {
	r := httptest.NewRequest(http.MethodGet, "http://mcp.example.com/mcp", nil)
	r.Header.Set("Authorization", "Bearer x")
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	srv := &caddyhttp.Server{}
	if accessLog {
		srv.Logs = &caddyhttp.ServerLogConfig{}
	}
	ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, srv)
	return &benchRequest{r: r.WithContext(ctx), w: httptest.NewRecorder()}
}

var noopNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// serve runs one request with the given Authorization value and fails the
// benchmark unless it was authorized and forwarded with a JWT.
func (br *benchRequest) serve(b *testing.B, h *Handler, authz string) {
	br.r.Header["Authorization"][0] = authz
	if err := h.ServeHTTP(br.w, br.r, noopNext); err != nil {
		b.Fatalf("ServeHTTP: %v", err)
	}
}

func benchTokens(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("Bearer opaque-bench-token-%07d", i)
	}
	return out
}

// warm makes one ServeHTTP per token, from a few goroutines so that 100k
// loopback introspections take seconds, not minutes.
func warm(b *testing.B, h *Handler, tokens []string) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := newBenchRequest(false)
			for i := w; i < len(tokens); i += workers {
				br.r.Header["Authorization"][0] = tokens[i]
				if err := h.ServeHTTP(br.w, br.r, noopNext); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("warming: %v", err)
	}
}

// BenchmarkServeHTTPHit is the cache-hit path with one warm token.
// "access_log" adds a server with access logging on, so the
// phantom_token_cache log field is set as in production with a log
// directive.
func BenchmarkServeHTTPHit(b *testing.B) {
	for _, accessLog := range []bool{false, true} {
		name := "access_log=off"
		if accessLog {
			name = "access_log=on"
		}
		b.Run(name, func(b *testing.B) {
			h, calls := benchHandler(b)
			br := newBenchRequest(accessLog)
			const token = "Bearer opaque-bench-token-single"
			br.serve(b, h, token) // the miss that warms the cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				br.serve(b, h, token)
			}
			b.StopTimer()
			if n := calls.Load(); n != 1 {
				b.Fatalf("AS calls = %d, want 1 (the loop must only hit)", n)
			}
		})
	}
}

// BenchmarkServeHTTPHitParallel is the one-token hit path from
// GOMAXPROCS goroutines: it shows contention on shared state (locks,
// counters) that a sequential loop cannot.
func BenchmarkServeHTTPHitParallel(b *testing.B) {
	h, calls := benchHandler(b)
	const token = "Bearer opaque-bench-token-single"
	newBenchRequest(false).serve(b, h, token)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		br := newBenchRequest(false)
		for pb.Next() {
			br.r.Header["Authorization"][0] = token
			if err := h.ServeHTTP(br.w, br.r, noopNext); err != nil {
				b.Errorf("ServeHTTP: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	if n := calls.Load(); n != 1 {
		b.Fatalf("AS calls = %d, want 1", n)
	}
}

// BenchmarkServeHTTPHitManyTokens cycles through benchManyTokens distinct
// warm tokens (each entry holds its own ~1 KiB JWT), so lookups miss the
// CPU caches as they would on a busy gateway. With -short, 1,000 tokens.
func BenchmarkServeHTTPHitManyTokens(b *testing.B) {
	h, calls := benchHandler(b)
	n := benchManyTokens
	if testing.Short() {
		n = 1_000 // a smoke run (-short -benchtime=1x) need not warm 100k
	}
	tokens := benchTokens(n)
	warm(b, h, tokens)
	if n := h.tokens.Len(); n != len(tokens) {
		b.Fatalf("cache holds %d entries after warming %d tokens", n, len(tokens))
	}
	warmCalls := calls.Load()
	br := newBenchRequest(false)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		br.serve(b, h, tokens[i])
		if i++; i == len(tokens) {
			i = 0
		}
	}
	b.StopTimer()
	if n := calls.Load() - warmCalls; n != 0 {
		b.Fatalf("AS calls during the loop = %d, want 0", n)
	}
}

// BenchmarkCacheGet is the lookup alone: key derivation and the cache
// read, one warm entry.
func BenchmarkCacheGet(b *testing.B) {
	h, _ := benchHandler(b)
	const token = "opaque-bench-token-single"
	newBenchRequest(false).serve(b, h, "Bearer "+token)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := h.tokens.Get(h.keyer.Key(token)); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkParseAuthorization parses a typical bearer header.
func BenchmarkParseAuthorization(b *testing.B) {
	hdr := http.Header{"Authorization": {"Bearer ory_at_Zm9vYmFyYmF6cXV4LXNvbWUtb3BhcXVlLXRva2Vu.c2lnbmF0dXJl"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, c := parseAuthorization(hdr); c != bearerToken {
			b.Fatal("not a bearer token")
		}
	}
}
