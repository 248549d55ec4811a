package dpopclient

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/dpop"
)

// server is a resource server that checks each request's proof with the
// gateway's own verifier (package dpop), optionally requiring its nonces,
// and records what it saw.
type server struct {
	*httptest.Server
	verifier *dpop.Verifier
	nonces   *dpop.NonceSource
	origin   string // the htu origin the proofs must name
	token    string

	mu     sync.Mutex
	seen   []seen
	thumbs map[string]bool
}

type seen struct {
	method, body string
	status       int
}

func newServer(t *testing.T, nonce bool, token string) *server {
	t.Helper()
	s := &server{token: token, thumbs: map[string]bool{}}
	if nonce {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		s.nonces = dpop.NewNonceSource(key, 0)
	}
	v, err := dpop.New(dpop.Config{Algorithms: []string{"ES256", "EdDSA"}, Nonces: s.nonces, Replay: dpop.NewMemoryReplayCache(1000)})
	if err != nil {
		t.Fatal(err)
	}
	s.verifier = v
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	s.origin = s.URL
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	status := http.StatusOK
	defer func() {
		s.mu.Lock()
		s.seen = append(s.seen, seen{r.Method, string(body), status})
		s.mu.Unlock()
	}()
	if r.Header.Get("Authorization") != "DPoP "+s.token {
		status = http.StatusUnauthorized
		w.WriteHeader(status)
		return
	}
	p, err := s.verifier.Verify(r.Context(), r.Header.Values("DPoP"), dpop.Request{
		Method: r.Method, URL: s.origin + r.URL.EscapedPath(), AccessToken: s.token,
	})
	var pe *dpop.Error
	switch {
	case errors.As(err, &pe) && pe.Code == dpop.CodeUseNonce:
		status = http.StatusUnauthorized
		w.Header().Set("DPoP-Nonce", s.nonces.Nonce())
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", algs="ES256 EdDSA"`)
		w.WriteHeader(status)
		return
	case err != nil:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
		w.WriteHeader(status)
		return
	}
	s.mu.Lock()
	s.thumbs[p.Thumbprint] = true
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok "+r.Method)
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.seen...)
}

func do(t *testing.T, c *http.Client, method, u, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestTransport: every request (POST with a body, GET, DELETE; a query in
// the URL) carries a proof the gateway's verifier accepts for it, with the
// key's thumbprint. With nonces required, the first request is retried
// once with the nonce, body included; the later ones carry it at once.
func TestTransport(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		for _, nonce := range []bool{false, true} {
			name := alg
			if nonce {
				name += "/nonce"
			}
			t.Run(name, func(t *testing.T) {
				key, err := NewKey(alg)
				if err != nil {
					t.Fatal(err)
				}
				srv := newServer(t, nonce, "opaque-token-1")
				c := &http.Client{Transport: &Transport{Key: key, Token: "opaque-token-1"}}
				for _, r := range []struct{ method, path, body string }{
					{http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
					{http.MethodGet, "/mcp?x=1", ""},
					{http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":2,"method":"ping"}`},
					{http.MethodDelete, "/mcp", ""},
				} {
					if got := do(t, c, r.method, srv.URL+r.path, r.body); got != http.StatusOK {
						t.Fatalf("%s %s: %d", r.method, r.path, got)
					}
				}
				reqs := srv.requests()
				want := 4
				if nonce {
					want = 5 // the first request twice
					if reqs[0].status != http.StatusUnauthorized || reqs[1].status != http.StatusOK || reqs[0].body != reqs[1].body || reqs[1].body == "" {
						t.Errorf("first exchange %+v, want a 401 then a 200 with the same body", reqs[:2])
					}
				}
				if len(reqs) != want {
					t.Errorf("the server got %d requests, want %d: %+v", len(reqs), want, reqs)
				}
				if !srv.thumbs[key.Thumbprint()] || len(srv.thumbs) != 1 {
					t.Errorf("proof keys %v, want only %s", srv.thumbs, key.Thumbprint())
				}
			})
		}
	}
}

// TestTransportRetriesOnce: a server that always wants another nonce gets
// the request twice, and the client the second 401.
func TestTransportRetriesOnce(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		nonce := strings.Repeat("n", n)
		mu.Unlock()
		w.Header().Set("DPoP-Nonce", nonce)
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	key, _ := NewKey("ES256")
	c := &http.Client{Transport: &Transport{Key: key, Token: "t"}}
	if got := do(t, c, http.MethodPost, srv.URL, "body"); got != http.StatusUnauthorized || n != 2 {
		t.Errorf("status %d after %d requests, want 401 after 2", got, n)
	}
}

// TestClientCredentials: the proof sent to the token endpoint has no ath,
// htm POST and htu the endpoint; use_dpop_nonce is answered once; a Bearer
// token_type is an error.
func TestClientCredentials(t *testing.T) {
	key, _ := NewKey("EdDSA")
	nonceKey := make([]byte, 32)
	_, _ = rand.Read(nonceKey)
	nonces := dpop.NewNonceSource(nonceKey, 0)
	v, err := dpop.New(dpop.Config{Nonces: nonces, Replay: dpop.NewMemoryReplayCache(100)})
	if err != nil {
		t.Fatal(err)
	}
	tokenType := "DPoP"
	var calls int
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		_ = r.ParseForm()
		if id, secret, _ := r.BasicAuth(); id != "agent" || secret != "s" || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("resource") != "https://mcp.example.com/mcp" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		p, err := v.Verify(r.Context(), r.Header.Values("DPoP"), dpop.Request{Method: r.Method, URL: srv.URL + "/token"})
		var pe *dpop.Error
		w.Header().Set("Content-Type", "application/json")
		switch {
		case errors.As(err, &pe) && pe.Code == dpop.CodeUseNonce:
			w.Header().Set("DPoP-Nonce", nonces.Nonce())
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"use_dpop_nonce"}`)
		case err != nil:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_dpop_proof"}`)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + p.Thumbprint, "token_type": tokenType, "expires_in": 60})
		}
	}))
	defer srv.Close()
	req := TokenRequest{TokenURL: srv.URL + "/token", ClientID: "agent", ClientSecret: "s", Scope: "mcp:tools", Resource: "https://mcp.example.com/mcp"}
	tok, err := ClientCredentials(context.Background(), srv.Client(), key, req)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-"+key.Thumbprint() || calls != 2 {
		t.Errorf("token %+v after %d calls, want one bound to the key after 2", tok, calls)
	}
	tokenType = "Bearer"
	if _, err := ClientCredentials(context.Background(), srv.Client(), key, req); err == nil || !strings.Contains(err.Error(), "token_type") {
		t.Errorf("a Bearer token: err %v, want a token_type error", err)
	}
}

func TestHTU(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com/mcp?session=1#frag": "https://mcp.example.com/mcp",
		"http://u:p@127.0.0.1:8080/a%2Fb":            "http://127.0.0.1:8080/a%2Fb",
		"https://mcp.example.com":                    "https://mcp.example.com",
	} {
		if got, err := HTU(in); err != nil || got != want {
			t.Errorf("HTU(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := HTU("/relative"); err == nil {
		t.Error("a relative URL was accepted")
	}
}
