package caddymodule_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)

// stubAS is a Curity-style authorization server: for Accept:
// application/jwt it answers 200 with the access-token JWT, or 204 when
// the token is inactive. Each token's answer is scripted by the test.
type stubAS struct {
	srv     *httptest.Server
	key     jwk.Key
	jwks    []byte
	calls   atomic.Int64
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter)
	seen    []http.Header // headers of every introspection request
	forms   []string      // raw bodies of every introspection request
	delay   time.Duration // applied before answering
	// exchange answers token-exchange requests at /token, when set.
	exchange func(w http.ResponseWriter, form url.Values)
}

func newStubAS(t *testing.T) *stubAS {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, "stub-1")
	_ = key.Set(jwk.AlgorithmKey, jwa.RS256)
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwksJSON, _ := json.Marshal(set)

	as := &stubAS{key: key, jwks: jwksJSON, answers: map[string]func(http.ResponseWriter){}}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(as.jwks)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		as.mu.Lock()
		exchange := as.exchange
		as.mu.Unlock()
		if exchange == nil {
			http.NotFound(w, r)
			return
		}
		exchange(w, r.PostForm)
	})
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		as.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		as.mu.Lock()
		as.seen = append(as.seen, r.Header.Clone())
		as.forms = append(as.forms, string(body))
		answer := as.answers[formValue(string(body), "token")]
		delay := as.delay
		as.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "gateway" || pass != "s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"AS-SECRET-TEXT"}`)
			return
		}
		// A header the AS sets that must reach neither the client nor the upstream.
		w.Header().Set("X-AS-Internal", "as-only")
		if answer == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(w)
	})
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func formValue(body, name string) string {
	q, _ := url.ParseQuery(body)
	return q.Get(name)
}

// on scripts the answer for one opaque token.
func (as *stubAS) on(token string, answer func(w http.ResponseWriter)) {
	noteSecret(token)
	as.mu.Lock()
	defer as.mu.Unlock()
	as.answers[token] = answer
}

// sign makes an RS256 access-token JWT with the stub's key.
func (as *stubAS) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdrs := jws.NewHeaders()
	_ = hdrs.Set(jws.TypeKey, "at+jwt")
	_ = hdrs.Set(jws.KeyIDKey, "stub-1")
	signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256, as.key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// active scripts a token as active with claims merged over sane defaults,
// and returns the JWT the AS hands out for it.
func (as *stubAS) active(t *testing.T, token string, claims map[string]any, extraHeaders ...string) string {
	t.Helper()
	c := map[string]any{
		"iss":       as.srv.URL,
		"sub":       "user-" + token,
		"client_id": "agent",
		"aud":       resource,
		"scope":     "mcp:tools openid",
		"iat":       time.Now().Unix(),
		"exp":       time.Now().Add(time.Hour).Unix(),
		"jti":       "jti-" + token,
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	jwt := as.sign(t, c)
	as.on(token, func(w http.ResponseWriter) {
		for i := 0; i+1 < len(extraHeaders); i += 2 {
			w.Header().Set(extraHeaders[i], extraHeaders[i+1])
		}
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = io.WriteString(w, jwt)
	})
	return jwt
}

// json scripts an RFC 7662 JSON answer for a token.
func (as *stubAS) json(token, body string) {
	as.on(token, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = io.WriteString(w, body)
	})
}

func (as *stubAS) status(token string, code int) {
	as.on(token, func(w http.ResponseWriter) { w.WriteHeader(code) })
}

func (as *stubAS) reset() {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.calls.Store(0)
	as.seen, as.forms = nil, nil
}

func (as *stubAS) lastHeaders(t *testing.T) http.Header {
	t.Helper()
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.seen) == 0 {
		t.Fatal("the AS saw no request")
	}
	return as.seen[len(as.seen)-1]
}

// recorder is the upstream: it records every request it receives.
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []*http.Request
	bodies []string
	status int
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{status: http.StatusOK}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, r.Clone(r.Context()))
		rec.bodies = append(rec.bodies, string(body))
		status := rec.status
		rec.mu.Unlock()
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "upstream body")
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.got)
}

func (rec *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return rec.got[len(rec.got)-1]
}

// dump renders everything the upstream received, to search for tokens.
func (rec *recorder) dump() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	for i, r := range rec.got {
		fmt.Fprintf(&b, "%s %s %s\n", r.Method, r.RequestURI, r.URL.String())
		for k, vs := range r.Header {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		b.WriteString(rec.bodies[i])
	}
	return b.String()
}

const (
	resource    = "https://mcp.example.com/mcp"
	metadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
)

// gateway is a real Caddy server loaded from a Caddyfile.
type gateway struct {
	addr string
	url  string
}

// handedOutPorts remembers the addresses freePort has returned: the kernel
// may offer a just-released port again at once, and two servers of one test
// would then collide on it.
var handedOutPorts = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freePort returns a 127.0.0.1 address that was free a moment ago and was
// not returned before in this process.
func freePort(t *testing.T) string {
	t.Helper()
	handedOutPorts.Lock()
	defer handedOutPorts.Unlock()
	for range 1000 {
		// The listener stays open until the function returns, so a skipped
		// port is not offered again within this loop.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addr := l.Addr().String()
		if !handedOutPorts.addrs[addr] {
			handedOutPorts.addrs[addr] = true
			return addr
		}
	}
	t.Fatal("no unused loopback port after 1000 tries")
	return ""
}

// startCaddy adapts a Caddyfile site body (with {AS}, {UPSTREAM} and
// {LISTEN} filled in) and runs it in-process until the test ends.
func startCaddy(t *testing.T, as *stubAS, up *recorder, site string) *gateway {
	t.Helper()
	g := &gateway{addr: freePort(t)}
	g.url = "http://" + g.addr
	loadCaddy(t, g, as, up, site)
	t.Cleanup(func() { _ = caddy.Stop() })
	return g
}

// loadCaddy (re)loads the config, as a config reload does.
func loadCaddy(t *testing.T, g *gateway, as *stubAS, up *recorder, site string) {
	t.Helper()
	loadSite(t, g, as.srv.URL, up.srv.URL, site)
}

// defaultSite is a gateway in front of the recording upstream.
const defaultSite = `
	phantom_token {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri {AS}/jwks
		resource ` + resource + `
		authorization_server {AS}
		required_scopes mcp:tools
		cache {
			max_ttl 1m
			negative_ttl 30s
		}
		timeout 1s
	}
	reverse_proxy {UPSTREAM}
`

// do sends one request through the gateway.
func (g *gateway) do(t *testing.T, method, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
		if strings.EqualFold(headers[i], "Authorization") {
			noteAuthorization(headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
