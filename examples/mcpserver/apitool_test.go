package mcpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// apiStubs is a token endpoint that answers token exchanges and an API that
// echoes the bearer token it got, with what each received.
type apiStubs struct {
	token, api *httptest.Server

	mu        sync.Mutex
	exchanges []map[string]string // the form of each exchange, and "auth"
	apiAuth   []string
	refuse    bool
	expiresIn int
}

func newAPIStubs(t *testing.T) *apiStubs {
	t.Helper()
	st := &apiStubs{expiresIn: 300}
	st.token = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, secret, _ := r.BasicAuth()
		st.mu.Lock()
		defer st.mu.Unlock()
		form := map[string]string{"auth": id + ":" + secret}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		st.exchanges = append(st.exchanges, form)
		w.Header().Set("Content-Type", "application/json")
		if st.refuse {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"subject token eyJ... rejected"}`))
			return
		}
		n := len(st.exchanges)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "api-token-" + string(rune('0'+n)), "token_type": "Bearer",
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": st.expiresIn,
		})
	}))
	t.Cleanup(st.token.Close)
	st.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		st.apiAuth = append(st.apiAuth, r.Header.Get("Authorization"))
		st.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"user": "agent", "auth": r.Header.Get("Authorization")})
	}))
	t.Cleanup(st.api.Close)
	return st
}

func startAPIServer(t *testing.T, ki *keyIssuer, st *apiStubs) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := mcpserver.New(ctx, mcpserver.Config{
		JWKSURL: ki.jwksURL(), Issuer: testIssuer, Resource: testResource, Stateless: true,
		API: &mcpserver.APIConfig{
			URL: st.api.URL + "/api/me", Resource: "https://api.example.com/api", TokenURL: st.token.URL,
			ClientID: "mcp server", ClientSecret: "s3cret+/", Scope: "api:read",
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestMyDataExchangesAndCaches: my_data exchanges the JWT of the call (RFC
// 8693 form, client_secret_basic with form-encoded credentials), calls the
// API with the exchanged token only, and reuses it for the same JWT; another
// JWT gets its own exchange.
func TestMyDataExchangesAndCaches(t *testing.T) {
	ki := newKeyIssuer(t)
	st := newAPIStubs(t)
	srv := startAPIServer(t, ki, st)
	jwt := ki.sign(t, "k1", "at+jwt", claims())
	cs := connect(t, srv.URL, jwt, nil)
	ctx := context.Background()

	for range 2 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "my_data"})
		if err != nil || res.IsError {
			t.Fatalf("my_data: %v %+v", err, res)
		}
		if got := res.StructuredContent.(map[string]any)["auth"]; got != "Bearer api-token-1" {
			t.Fatalf("the API got %v, want the exchanged token", got)
		}
	}
	st.mu.Lock()
	if len(st.exchanges) != 1 {
		t.Fatalf("%d exchanges for one JWT, want 1", len(st.exchanges))
	}
	want := map[string]string{
		"auth": "mcp+server:s3cret%2B%2F", "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
		"subject_token": jwt, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"resource": "https://api.example.com/api", "scope": "api:read",
	}
	for k, v := range want {
		if st.exchanges[0][k] != v {
			t.Errorf("exchange %s = %q, want %q", k, st.exchanges[0][k], v)
		}
	}
	for _, a := range st.apiAuth {
		if strings.Contains(a, jwt) {
			t.Error("the API received the incoming JWT")
		}
	}
	st.mu.Unlock()

	c := claims()
	c["jti"] = "jti-2"
	other := connect(t, srv.URL, ki.sign(t, "k1", "at+jwt", c), nil)
	if res, err := other.CallTool(ctx, &mcp.CallToolParams{Name: "my_data"}); err != nil || res.IsError {
		t.Fatalf("my_data with another JWT: %v %+v", err, res)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.exchanges) != 2 {
		t.Errorf("%d exchanges for two JWTs, want 2", len(st.exchanges))
	}
}

// TestMyDataExchangeNearExpiry: an exchanged token that expires within the
// margin is not reused.
func TestMyDataExchangeNearExpiry(t *testing.T) {
	ki := newKeyIssuer(t)
	st := newAPIStubs(t)
	st.expiresIn = 20 // under the 30s margin
	srv := startAPIServer(t, ki, st)
	cs := connect(t, srv.URL, ki.sign(t, "k1", "at+jwt", claims()), nil)
	for range 2 {
		if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "my_data"}); err != nil || res.IsError {
			t.Fatalf("my_data: %v %+v", err, res)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.exchanges) != 2 {
		t.Errorf("%d exchanges, want 2 (a token about to expire is not reused)", len(st.exchanges))
	}
}

// TestMyDataExchangeRefused: a refused exchange is a tool error naming the
// AS's error code, without its description (which may quote the token), and
// the API is not called.
func TestMyDataExchangeRefused(t *testing.T) {
	ki := newKeyIssuer(t)
	st := newAPIStubs(t)
	st.refuse = true
	srv := startAPIServer(t, ki, st)
	cs := connect(t, srv.URL, ki.sign(t, "k1", "at+jwt", claims()), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "my_data"})
	if err != nil || !res.IsError {
		t.Fatalf("my_data with a refused exchange: %v %+v, want a tool error", err, res)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !strings.Contains(text, "invalid_grant") || strings.Contains(text, "eyJ") {
		t.Errorf("tool error %q: want the error code and no token", text)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.apiAuth) != 0 {
		t.Errorf("the API was called %d times", len(st.apiAuth))
	}
}
