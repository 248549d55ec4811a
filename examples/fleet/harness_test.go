// Package fleet tests a fleet of gateways: two (or three) processes of the
// examples/caddy binary sharing one real Redis (standalone or a
// three-master cluster), in front of a stub AS that counts its calls.
package fleet

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// caddyBin is the examples/caddy binary, built once by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phantom-fleet-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy-phantom")
	build := exec.Command("go", "build", "-o", caddyBin, "../caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building examples/caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const resource = "https://mcp.example.com/mcp"

// stubAS answers introspection with a signed access-token JWT
// (application/jwt) for active tokens and 204 for revoked ones, after a
// configurable latency, and counts its calls per token.
type stubAS struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	latency atomic.Int64
	calls   atomic.Int64
	mu      sync.Mutex
	perTok  map[string]int
	revoked map[string]bool
	subject map[string]string         // token → sub (default "user-<token>")
	client  map[string]string         // token → client_id (default "agent")
	extra   map[string]map[string]any // token → more claims (e.g. cnf)
	// jwts are every JWT handed out, for the Redis dump check.
	jwts []string
}

func newStubAS(t *testing.T) *stubAS {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	as := &stubAS{key: key, perTok: map[string]int{}, revoked: map[string]bool{}, subject: map[string]string{}, client: map[string]string{}, extra: map[string]map[string]any{}}
	pub, _ := jwk.FromRaw(key.Public())
	_ = pub.Set(jwk.KeyIDKey, "fleet-1")
	_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		tok := r.PostForm.Get("token")
		as.calls.Add(1)
		as.mu.Lock()
		as.perTok[tok]++
		revoked, sub, client, extra := as.revoked[tok], as.subject[tok], as.client[tok], as.extra[tok]
		as.mu.Unlock()
		time.Sleep(time.Duration(as.latency.Load()))
		if revoked {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if sub == "" {
			sub = "user-" + tok
		}
		if client == "" {
			client = "agent"
		}
		claims := map[string]any{
			"iss": as.srv.URL, "sub": sub, "client_id": client, "aud": resource,
			"scope": "mcp:tools fleet-scope-text", "iat": time.Now().Unix(),
			"exp": time.Now().Add(time.Hour).Unix(), "jti": "jti-" + tok,
		}
		for k, v := range extra {
			claims[k] = v
		}
		jwt := as.sign(t, claims)
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = io.WriteString(w, jwt)
	})
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *stubAS) sign(t *testing.T, claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	hdrs := jws.NewHeaders()
	_ = hdrs.Set(jws.TypeKey, "at+jwt")
	_ = hdrs.Set(jws.KeyIDKey, "fleet-1")
	signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256, as.key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Error(err)
	}
	as.mu.Lock()
	as.jwts = append(as.jwts, string(signed))
	as.mu.Unlock()
	return string(signed)
}

func (as *stubAS) revoke(tokens ...string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, t := range tokens {
		as.revoked[t] = true
	}
}

func (as *stubAS) callsFor(token string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.perTok[token]
}

// node is one gateway process.
type node struct {
	url, admin string
	cmd        *exec.Cmd
	log        string
	done       chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nodeOptions shape one node's config.
type nodeOptions struct {
	redisAddrs []string
	secret     string // default "fleet-secret"
	maxTTL     string // default 10m
	directives string // more phantom_token directives (e.g. a dpop block)
}

// startNode runs the gateway binary with a Caddyfile in front of an
// upstream that answers 200.
func startNode(t *testing.T, as *stubAS, upstream string, o nodeOptions) *node {
	t.Helper()
	if o.secret == "" {
		o.secret = "fleet-secret"
	}
	if o.maxTTL == "" {
		o.maxTTL = "10m"
	}
	dir := t.TempDir()
	listen, admin := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	log {
		output file %s/caddy.log
		level DEBUG
	}
}
http://%s {
	phantom_token {
		introspection_endpoint %s/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri %s/jwks
		resource %s
		authorization_server %s
		cache {
			max_ttl %s
			negative_ttl 0
			redis {
				address %s
				secret %s
				timeout 250ms
			}
		}
		timeout 3s
%s
	}
	reverse_proxy %s
}
`, admin, dir, listen, as.srv.URL, as.srv.URL, resource, as.srv.URL, o.maxTTL,
		strings.Join(o.redisAddrs, " "), o.secret, o.directives, strings.TrimPrefix(upstream, "http://"))
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &node{url: "http://" + listen, admin: "http://" + admin, log: filepath.Join(dir, "caddy.log"), done: make(chan struct{})}
	n.cmd = exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	n.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out, _ := os.Create(filepath.Join(dir, "stdout.log"))
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); out.Close(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			t.Logf("node %s output (tail):\n%s", n.url, tailString(string(b), 3000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			return n
		}
		select {
		case <-n.done:
			b, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			t.Fatalf("gateway exited at start:\n%s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway not listening after 30 s")
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// client has a generous timeout: the -race binary under a loaded CI
// machine is slow, but a request never hangs.
var client = &http.Client{Timeout: 20 * time.Second}

// get sends one request with the token and returns the status (0 on a
// transport error).
func (n *node) get(token string) int {
	req, _ := http.NewRequest(http.MethodGet, n.url+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// purge posts a purge to the node's admin API.
func (n *node) purge(t *testing.T, body string) (int, string) {
	t.Helper()
	resp, err := client.Post(n.admin+"/phantom_token/purge", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of a metric's samples whose line contains match,
// from the node's admin metrics endpoint.
func (n *node) metric(t *testing.T, name, match string) float64 {
	t.Helper()
	resp, err := client.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) && strings.Contains(line, match) {
			var v float64
			fields := strings.Fields(line)
			fmt.Sscan(fields[len(fields)-1], &v)
			sum += v
		}
	}
	return sum
}

// upstream answers 200 to everything.
func newUpstream(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	return srv.URL
}
