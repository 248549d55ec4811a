// Package hydra builds and launches a real Ory Hydra v2.3.0 for end-to-end
// tests: an RFC 7662 authorization server that issues opaque access tokens.
//
// The binary is built from the nested module examples/hydra (see its
// build.sh) into examples/hydra/bin/hydra. Start runs `hydra serve all --dev`
// with DSN=memory on two free loopback ports and stops it at test cleanup.
//
// Hydra's endpoints, as used here:
//   - token:         POST {PublicURL}/oauth2/token (client authentication)
//   - revocation:    POST {PublicURL}/oauth2/revoke (client authentication)
//   - introspection: POST {AdminURL}/admin/oauth2/introspect — an admin API:
//     Hydra v2 does not authenticate the caller there, so credentials a
//     gateway sends (client_secret_basic) are accepted and ignored.
//   - clients:       POST {AdminURL}/admin/clients
package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/procutil"
)

// BinaryEnv names an environment variable that, when set, is the path of a
// prebuilt hydra binary to use instead of examples/hydra/bin/hydra.
const BinaryEnv = "PHANTOM_HYDRA_BINARY"

const (
	// readyTimeout is generous for the same reason as oidcprovider's: a
	// busy 2-core CI machine, and an exited server is noticed at once.
	readyTimeout = 2 * time.Minute
	buildTimeout = 30 * time.Minute
)

// Hydra is a running Hydra server.
type Hydra struct {
	PublicURL string // e.g. http://127.0.0.1:41234 (no trailing slash)
	AdminURL  string // e.g. http://127.0.0.1:41235 (no trailing slash)
	Issuer    string // the iss Hydra puts in tokens and introspection: PublicURL + "/"
}

// Client is an OAuth client registered at Hydra.
type Client struct {
	ID, Secret string
	Scopes     []string // allowed scopes
	Audience   []string // allowed audiences (resource URLs)
	AuthMethod string   // token_endpoint_auth_method; default client_secret_basic
}

func (c Client) authMethod() string {
	if c.AuthMethod == "" {
		return "client_secret_basic"
	}
	return c.AuthMethod
}

// IntrospectionURL is Hydra's RFC 7662 endpoint, on the admin port.
func (h *Hydra) IntrospectionURL() string { return h.AdminURL + "/admin/oauth2/introspect" }

// TokenURL is Hydra's token endpoint, on the public port.
func (h *Hydra) TokenURL() string { return h.PublicURL + "/oauth2/token" }

// RevocationURL is Hydra's RFC 7009 endpoint, on the public port.
func (h *Hydra) RevocationURL() string { return h.PublicURL + "/oauth2/revoke" }

// ---------------------------------------------------------------------------
// Building

var buildMu sync.Mutex // serialises builds within one test binary

// Binary returns the path of the hydra binary, building it with
// examples/hydra/build.sh when it is missing or older than the tool module's
// go.mod/go.sum. The first build takes minutes; progress goes to the test log.
// A failed build fails the test (never skips): tests that need a real server
// must not pretend to pass without one.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			t.Fatalf("%s=%s: not a file (%v)", BinaryEnv, p, err)
		}
		return p
	}
	dir, err := toolDir()
	if err != nil {
		t.Fatalf("locating examples/hydra: %v", err)
	}
	bin := filepath.Join(dir, "bin", "hydra")
	if upToDate(dir, bin) {
		return bin
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	// Serialise with other test binaries (go test ./... runs packages in
	// parallel) so only one of them compiles Hydra.
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatalf("creating %s/bin: %v", dir, err)
	}
	unlock, err := procutil.LockFile(filepath.Join(dir, "bin", ".build.lock"), 0o644)
	if err != nil {
		t.Fatalf("locking the hydra build: %v", err)
	}
	defer unlock()
	if upToDate(dir, bin) { // another process built it while we waited
		return bin
	}

	if os.Getenv("CI") == "true" {
		t.Logf("hydra: %s is missing or stale; CI should run `bash examples/hydra/build.sh` before the tests — building it now", bin)
	}
	t.Logf("hydra: building %s (cgo + sqlite, first build takes several minutes)...", bin)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(dir, "build.sh"))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("hydra: starting build.sh: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("hydra: build failed after %s: %v\n%s", time.Since(start).Round(time.Second), err, out.String())
			}
			if _, err := os.Stat(bin); err != nil {
				t.Fatalf("hydra: build.sh succeeded but %s is missing: %v\n%s", bin, err, out.String())
			}
			t.Logf("hydra: built in %s", time.Since(start).Round(time.Second))
			return bin
		case <-tick.C:
			// Shows live with go test -v; otherwise in the log at the end.
			t.Logf("hydra: still building (%s)...", time.Since(start).Round(time.Second))
		}
	}
}

// toolDir returns the absolute path of examples/hydra, found from this
// source file's location (robust to the test's working directory).
func toolDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("runtime.Caller failed")
	}
	for d := filepath.Dir(file); ; {
		if filepath.Base(d) == "examples" {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				td := filepath.Join(d, "hydra")
				if _, err := os.Stat(filepath.Join(td, "build.sh")); err != nil {
					return "", fmt.Errorf("%s: %w", td, err)
				}
				return td, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no examples/ module above %s", file)
		}
		d = parent
	}
}

// upToDate mirrors build.sh: the binary exists and is newer than go.mod and go.sum.
func upToDate(dir, bin string) bool {
	b, err := os.Stat(bin)
	if err != nil || b.IsDir() {
		return false
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		s, err := os.Stat(filepath.Join(dir, f))
		if err != nil || !b.ModTime().After(s.ModTime()) {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Running

// Start launches Hydra (`serve all --dev`, DSN=memory, opaque access tokens)
// on free loopback ports and waits until /health/ready answers 200 on both.
// The process (group) is killed at test cleanup; its output goes to a temp
// file that is copied into the test log if the test fails.
//
// extraEnv adds or overrides Hydra configuration as KEY=value environment
// variables, e.g. "TTL_ACCESS_TOKEN=5s".
func Start(t testing.TB, extraEnv ...string) *Hydra {
	t.Helper()
	bin := Binary(t)

	const attempts = 3 // free ports are picked then released: retry on a race
	var lastErr error
	for i := 0; i < attempts; i++ {
		h, err := start(t, bin, extraEnv)
		if err == nil {
			return h
		}
		lastErr = err
		if !errors.Is(err, errPortRace) {
			break
		}
		t.Logf("hydra: %v; retrying", err)
	}
	t.Fatalf("hydra: %v", lastErr)
	return nil
}

var errPortRace = errors.New("port already in use")

func start(t testing.TB, bin string, extraEnv []string) (*Hydra, error) {
	t.Helper()
	ports, err := procutil.FreeLoopbackPorts(2)
	if err != nil {
		return nil, err
	}
	pub, adm := ports[0], ports[1]
	h := &Hydra{
		PublicURL: "http://127.0.0.1:" + strconv.Itoa(pub),
		AdminURL:  "http://127.0.0.1:" + strconv.Itoa(adm),
	}
	h.Issuer = h.PublicURL + "/"

	logFile, err := os.CreateTemp(t.TempDir(), "hydra-*.log")
	if err != nil {
		return nil, err
	}
	env := append(baseEnv(),
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT="+strconv.Itoa(pub),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT="+strconv.Itoa(adm),
		"URLS_SELF_ISSUER="+h.Issuer,
		"URLS_SELF_PUBLIC="+h.PublicURL+"/",
		"URLS_SELF_ADMIN="+h.AdminURL+"/",
		"STRATEGIES_ACCESS_TOKEN=opaque",
		"SECRETS_SYSTEM="+randomHex(32),
		"LOG_LEVEL=warn",
		"LOG_LEAK_SENSITIVE_VALUES=false",
		"OAUTH2_EXPOSE_INTERNAL_ERRORS=true",
		"SQA_OPT_OUT=true", // no usage telemetry from tests
	)
	env = append(env, extraEnv...)
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so stopping it reaches any child it starts;
	// killed with the test binary if that dies without its cleanups.
	procutil.SetProcessGroup(cmd)
	procutil.SetParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	stop := func() {
		procutil.KillGroup(cmd)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("hydra: pid %d did not exit after SIGKILL", cmd.Process.Pid)
		}
		logFile.Close()
	}
	dump := func() {
		b, _ := os.ReadFile(logFile.Name())
		t.Logf("hydra output (%s):\n%s", logFile.Name(), b)
	}

	if err := waitReady(h, exited); err != nil {
		stop()
		b, _ := os.ReadFile(logFile.Name())
		if bytes.Contains(b, []byte("address already in use")) {
			return nil, fmt.Errorf("%w: %v", errPortRace, err)
		}
		dump()
		select {
		case <-exited:
			err = fmt.Errorf("%v (process: %v)", err, waitErr)
		default:
		}
		return nil, err
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			dump()
		}
	})
	return h, nil
}

// baseEnv is the test's environment without variables that would reconfigure
// Hydra behind our back (Hydra reads its whole config from the environment).
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "LANG", strings.HasPrefix(k, "LC_"), k == "TZ":
			env = append(env, kv)
		}
	}
	return env
}

func waitReady(h *Hydra, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	urls := []string{h.PublicURL + "/health/ready", h.AdminURL + "/health/ready"}
	c := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("hydra exited before it was ready")
		default:
		}
		ready := 0
		for _, u := range urls {
			resp, err := c.Get(u)
			if err != nil {
				last = err.Error()
				break
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				last = fmt.Sprintf("GET %s: %s", u, resp.Status)
				break
			}
			ready++
		}
		if ready == len(urls) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %s", readyTimeout, last)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Admin and OAuth calls

var httpClient = &http.Client{Timeout: 15 * time.Second}

// CreateClient registers c at Hydra's admin API with the client_credentials
// grant, its scopes and audiences. ID and Secret (6+ characters) are required.
func (h *Hydra) CreateClient(t testing.TB, c Client) {
	t.Helper()
	if c.ID == "" || len(c.Secret) < 6 {
		t.Fatalf("hydra.CreateClient: ID and a Secret of 6+ characters are required")
	}
	body, err := json.Marshal(map[string]any{
		"client_id":                  c.ID,
		"client_secret":              c.Secret,
		"grant_types":                []string{"client_credentials"},
		"scope":                      strings.Join(c.Scopes, " "),
		"audience":                   nonNil(c.Audience),
		"token_endpoint_auth_method": c.authMethod(),
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.AdminURL+"/admin/clients", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	status, respBody := do(t, req)
	if status != http.StatusCreated {
		t.Fatalf("hydra: creating client %q: status %d: %s", c.ID, status, respBody)
	}
}

// ClientCredentialsToken runs the client_credentials grant for c and returns
// the (opaque) access token. scope is space-separated; audience may be nil.
func (h *Hydra) ClientCredentialsToken(t testing.TB, c Client, scope string, audience []string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if len(audience) > 0 {
		form.Set("audience", strings.Join(audience, " "))
	}
	status, body := h.clientPost(t, c, h.TokenURL(), form)
	if status != http.StatusOK {
		t.Fatalf("hydra: token for %q (scope %q, audience %q): status %d: %s", c.ID, scope, audience, status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("hydra: token response is not a token (%v): %s", err, body)
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		t.Fatalf("hydra: token_type = %q, want bearer", tr.TokenType)
	}
	return tr.AccessToken
}

// Revoke revokes token (RFC 7009) as client c.
func (h *Hydra) Revoke(t testing.TB, c Client, token string) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	status, body := h.clientPost(t, c, h.RevocationURL(), form)
	if status != http.StatusOK {
		t.Fatalf("hydra: revoking a token of %q: status %d: %s", c.ID, status, body)
	}
}

// clientPost posts form to u with c's client authentication.
func (h *Hydra) clientPost(t testing.TB, c Client, u string, form url.Values) (int, []byte) {
	t.Helper()
	switch m := c.authMethod(); m {
	case "client_secret_basic":
	case "client_secret_post":
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	default:
		t.Fatalf("hydra: client auth method %q is not supported by this helper", m)
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.authMethod() == "client_secret_basic" {
		// RFC 6749 §2.3.1: form-urlencode both parts before Basic.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("hydra: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("hydra: %s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
