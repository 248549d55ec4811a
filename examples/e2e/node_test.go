package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

// nodeDir holds the npm client scripts, package.json and package-lock.json.
const nodeDir = "node"

// sdkPackage is the npm MCP SDK the scripts use.
const sdkPackage = "@modelcontextprotocol/sdk"

var (
	npmOnce sync.Once
	npmErr  error
)

// requireNodeClient makes sure node and the locked npm packages are there.
// Under CI=true a missing piece fails the test: CI installs them with
// `npm ci --prefix examples/e2e/node` first. Locally the test runs `npm ci`
// itself, so the README's test command works on a fresh clone.
func requireNodeClient(t *testing.T) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if _, err := exec.LookPath("node"); err != nil {
		// The test suite needs Node.js (README); a missing one fails
		// loudly rather than passing with the npm client untested.
		t.Fatal("node is not installed; the npm MCP SDK tests need Node.js 20+")
	}
	if err := installedSDKMatchesLock(); err == nil {
		return
	} else if ci {
		t.Fatalf("%v: run `npm ci --prefix examples/e2e/node` before the tests (CI=true, so the test does not install it)", err)
	}
	npmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeDir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = errors.New("npm ci in examples/e2e/node: " + err.Error() + "\n" + string(out))
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	if err := installedSDKMatchesLock(); err != nil {
		t.Fatal(err)
	}
}

// installedSDKMatchesLock reports whether node_modules holds the SDK version
// package.json pins.
func installedSDKMatchesLock() error {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(nodeDir, "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return err
	}
	var installed struct {
		Version string `json:"version"`
	}
	raw, err = os.ReadFile(filepath.Join(nodeDir, "node_modules", sdkPackage, "package.json"))
	if err != nil {
		return errors.New("examples/e2e/node/node_modules has no " + sdkPackage)
	}
	if err := json.Unmarshal(raw, &installed); err != nil {
		return err
	}
	if want := pkg.Dependencies[sdkPackage]; installed.Version != want {
		return errors.New("examples/e2e/node/node_modules has " + sdkPackage + " " + installed.Version + ", package.json pins " + want)
	}
	return nil
}

// nodeReport is the JSON line the scripts print.
type nodeReport struct {
	SessionID string       `json:"sessionId"`
	Tools     []string     `json:"tools"`
	Whoami    string       `json:"whoami"`
	Trace     []traceEntry `json:"trace"`
}

// traceEntry is one HTTP request the npm SDK made.
type traceEntry struct {
	Method        string            `json:"method"`
	URL           string            `json:"url"`
	Authorization bool              `json:"authorization"`
	Status        int               `json:"status"`
	Form          map[string]string `json:"form"`
	Error         string            `json:"error"`
}

// runNode runs one of the scripts and returns its report. The arguments may
// hold a token or a secret, so they are never logged.
func runNode(t *testing.T, script string, args ...string) nodeReport {
	t.Helper()
	requireNodeClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = nodeDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", script, err, stderr.String(), stdout.String())
	}
	if stderr.Len() > 0 {
		t.Logf("node %s stderr:\n%s", script, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep nodeReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("node %s printed no JSON report: %v\n%s", script, err, stdout.String())
	}
	return rep
}

// wantToolsAndClaims checks the common part of a node report.
func (s *stack) wantToolsAndClaims(t *testing.T, rep nodeReport) {
	t.Helper()
	for _, want := range []string{"whoami", "countdown"} {
		if !slices.Contains(rep.Tools, want) {
			t.Errorf("tools/list = %v, want it to contain %s", rep.Tools, want)
		}
	}
	s.wantAgentClaims(t, whoamiClaims(t, rep.Whoami))
	if rep.SessionID == "" {
		t.Error("the npm client got no Mcp-Session-Id")
	}
}

// TestNodeSDKClientWithStaticToken: the npm MCP SDK client with an opaque
// bearer token: initialize, tools/list and whoami succeed through the
// gateway, the MCP server sees only JWTs, the session's DELETE arrives, and
// the gateway introspects once.
func TestNodeSDKClientWithStaticToken(t *testing.T) {
	requireNodeClient(t)
	s := startStack(t)
	opaque := s.agentToken(t)
	s.as.ResetIntrospectionCalls()

	rep := runNode(t, "static-token.mjs", s.resource, opaque)

	s.wantToolsAndClaims(t, rep)
	for _, e := range rep.Trace {
		if strings.HasPrefix(e.URL, s.resource) && (!e.Authorization || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
			t.Errorf("npm client request %s %s: authorization=%v status=%d", e.Method, e.URL, e.Authorization, e.Status)
		}
	}
	reqs := s.upstream.requests()
	wantUpstreamSawOnlyJWTs(t, reqs, opaque)
	wantSessionDeleted(t, reqs, rep.SessionID)
	s.wantIntrospections(t, 1)
}

// TestNodeSDKClientCredentialsDiscovery: the npm SDK's
// ClientCredentialsProvider starts with no token and finds everything
// itself: the gateway's 401 names the protected resource metadata, the
// document names the AS, the AS metadata names the token endpoint, the token
// is requested for this resource (RFC 8707), and the retried calls succeed.
func TestNodeSDKClientCredentialsDiscovery(t *testing.T) {
	requireNodeClient(t)
	s := startStack(t)
	s.as.ResetIntrospectionCalls()

	rep := runNode(t, "client-credentials.mjs", s.resource, agentID, agentSecret, scopeTools, s.as.Issuer)

	// The audience is exactly this resource although the agent may also get
	// tokens for another one: the SDK sent resource=<this resource>.
	s.wantToolsAndClaims(t, rep)

	// The discovery, in order, as the SDK made it.
	steps := []struct {
		what   string
		match  func(traceEntry) bool
		status int
	}{
		{"first MCP request, without a token", func(e traceEntry) bool {
			return e.Method == http.MethodPost && e.URL == s.resource && !e.Authorization
		}, http.StatusUnauthorized},
		{"protected resource metadata from the challenge", func(e traceEntry) bool {
			return e.Method == http.MethodGet && e.URL == s.metadataURL
		}, http.StatusOK},
		{"authorization server metadata", func(e traceEntry) bool {
			return e.Method == http.MethodGet && e.URL == s.as.URL+demoas.MetadataPath
		}, http.StatusOK},
		{"client-credentials token request for the resource", func(e traceEntry) bool {
			return e.Method == http.MethodPost && e.URL == s.as.URL+demoas.TokenPath &&
				e.Form["grant_type"] == "client_credentials" && e.Form["resource"] == s.resource && e.Form["scope"] == scopeTools
		}, http.StatusOK},
		{"MCP request with the token", func(e traceEntry) bool {
			return e.Method == http.MethodPost && e.URL == s.resource && e.Authorization
		}, http.StatusOK},
	}
	next := 0
	for _, step := range steps {
		i := slices.IndexFunc(rep.Trace[next:], step.match)
		if i < 0 {
			t.Fatalf("discovery step %q not found after request %d; trace:\n%s", step.what, next, mustJSON(t, rep.Trace))
		}
		if got := rep.Trace[next+i].Status; got != step.status {
			t.Errorf("discovery step %q: status %d, want %d", step.what, got, step.status)
		}
		next += i + 1
	}
	for _, e := range rep.Trace[next:] {
		if strings.HasPrefix(e.URL, s.resource) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
			t.Errorf("after discovery, %s %s got %d", e.Method, e.URL, e.Status)
		}
	}

	// The gateway's side of it: Caddy served the metadata document, and the
	// first /mcp request it handled was the 401.
	metadataPath := strings.TrimPrefix(s.metadataURL, s.gatewayURL)
	entries := s.waitAccessLog(t, func(es []accessEntry) bool {
		return slices.ContainsFunc(es, func(e accessEntry) bool { return e.Request.Method == http.MethodDelete })
	})
	if !slices.ContainsFunc(entries, func(e accessEntry) bool {
		return e.Request.Method == http.MethodGet && e.Request.URI == metadataPath && e.Status == http.StatusOK
	}) {
		t.Errorf("Caddy's access log has no 200 GET %s: %+v", metadataPath, entries)
	}
	if i := slices.IndexFunc(entries, func(e accessEntry) bool { return e.Request.URI == "/mcp" }); i < 0 || entries[i].Status != http.StatusUnauthorized {
		t.Errorf("Caddy's first /mcp request was not the 401 challenge: %+v", entries)
	}

	reqs := s.upstream.requests()
	for i, r := range reqs {
		if typ := joseType(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); typ == "" {
			t.Errorf("upstream request %d (%s) carried no JWT", i, r.Method)
		}
	}
	wantSessionDeleted(t, reqs, rep.SessionID)
	s.wantIntrospections(t, 1)
}
