package caddymodule

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// benchMCPBody is a tools/call of about 1 KiB, as an agent sends one.
var benchMCPBody = []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"search_documents","arguments":{"query":"` +
	strings.Repeat("q", 900) + `","limit":10},"_meta":{"progressToken":"p-17"}}}`)

// BenchmarkServeHTTPHitMCPOperation compares, in one run, the plain hit
// (GET, a route without rules) with a POST tools/call hit of a 1 KiB body
// through a route with five mcp_operation rules (the matching one last):
// the cost of reading, classifying and scope-checking the operation.
func BenchmarkServeHTTPHitMCPOperation(b *testing.B) {
	const token = "Bearer opaque-bench-token-single"
	b.Run("plain_get", func(b *testing.B) {
		h, _ := benchHandler(b)
		br := newBenchRequest(false)
		br.serve(b, h, token)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			br.serve(b, h, token)
		}
	})
	b.Run("tools_call_1KiB_5_rules", func(b *testing.B) {
		h, calls := benchMCPHandler(b)
		br := newBenchRequest(false)
		br.r.Method = http.MethodPost
		body := bytes.NewReader(benchMCPBody)
		var forwarded int
		next := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			forwarded++
			return nil
		})
		serve := func() {
			body.Reset(benchMCPBody)
			br.r.Body = readCloser{body}
			br.r.ContentLength = int64(len(benchMCPBody))
			br.r.Header["Authorization"][0] = token
			if err := h.ServeHTTP(br.w, br.r, next); err != nil {
				b.Fatalf("ServeHTTP: %v", err)
			}
		}
		serve()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			serve()
		}
		b.StopTimer()
		if calls.Load() != 1 || forwarded != b.N+1 {
			b.Fatalf("AS calls %d, forwarded %d of %d: the loop must only hit and forward", calls.Load(), forwarded, b.N+1)
		}
	})
}

// benchMCPHandler is benchHandler with five rules.
func benchMCPHandler(tb testing.TB) (*Handler, interface{ Load() int64 }) {
	tb.Helper()
	return benchHandlerWith(tb, func(h *Handler) {
		h.MCPOperations = []MCPOperation{
			{Method: "tools/call", Name: "delete_*", Scopes: []string{"files:write"}},
			{Method: "tools/call", Name: "get_weather", Scopes: []string{"weather:read"}},
			{Method: "resources/read", Name: "file:///private/*", Scopes: []string{"files:read"}},
			{Method: "prompts/get", Scopes: []string{"prompts:read"}},
			{Method: "tools/call", Name: "search_*", Scopes: []string{"openid"}},
		}
		h.ScopeImplies = map[string][]string{"mcp:admin": {"files:write", "files:read"}}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

type caddyHandlerFunc func(http.ResponseWriter, *http.Request) error

func (f caddyHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }
