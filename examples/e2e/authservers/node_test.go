package authservers

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
)

// nodeDir holds the npm client scripts of the examples/e2e package (used as
// they are): client-credentials.mjs runs the npm SDK's
// ClientCredentialsProvider.
var nodeDir = filepath.Join("..", "node")

const sdkPackage = "@modelcontextprotocol/sdk"

var (
	npmOnce sync.Once
	npmErr  error
)

// requireNodeClient makes sure node and the locked npm SDK are there. With
// CI=true a missing install fails the test (CI runs `npm ci --prefix
// examples/e2e/node` first); otherwise the test runs `npm ci` itself. It
// never skips.
func requireNodeClient(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed; the npm MCP SDK tests need Node.js 18+")
	}
	if err := installedSDKMatches(); err == nil {
		return
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("%v: run `npm ci --prefix examples/e2e/node` before the tests", err)
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
	if err := installedSDKMatches(); err != nil {
		t.Fatal(err)
	}
}

// installedSDKMatches reports whether node_modules holds the SDK version
// package.json pins.
func installedSDKMatches() error {
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

// traceEntry is one HTTP request the npm SDK made (never a token or secret).
type traceEntry struct {
	Method        string            `json:"method"`
	URL           string            `json:"url"`
	Authorization bool              `json:"authorization"`
	Status        int               `json:"status"`
	Form          map[string]string `json:"form"`
}

// nodeReport is the JSON line the scripts print.
type nodeReport struct {
	SessionID string       `json:"sessionId"`
	Tools     []string     `json:"tools"`
	Whoami    string       `json:"whoami"`
	Trace     []traceEntry `json:"trace"`
}

// runNode runs a script of examples/e2e/node. Its arguments hold secrets:
// they are never logged.
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

// testNodeDiscovery: the npm SDK's ClientCredentialsProvider starts with no
// token; the gateway's 401 names its protected resource metadata, which
// names the AS; the SDK reads the AS metadata, gets a client-credentials
// token for the resource (RFC 8707) and completes a session (initialize,
// tools/list, whoami, DELETE), which the gateway introspects once.
func testNodeDiscovery(t *testing.T, c *caseEnv) {
	c.load(t, c.block, nil)
	before := c.g.metrics(t)

	rep := runNode(t, "client-credentials.mjs", c.g.resource, agentID, agentSecret, scopeTools, c.as.issuer)

	if !slices.Contains(rep.Tools, "whoami") {
		t.Errorf("tools/list = %v, want whoami", rep.Tools)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(rep.Whoami), &claims); err != nil {
		t.Fatalf("whoami text is not JSON: %v", err)
	}
	c.wantClaims(t, claims)

	// The SDK's own steps: a 401 without a token, the AS metadata, a token
	// request for this resource at the AS, then authorized MCP requests.
	var sawChallenge, sawASMetadata, sawTokenRequest bool
	for _, e := range rep.Trace {
		switch {
		case e.URL == c.g.resource && !e.Authorization && e.Status == http.StatusUnauthorized:
			sawChallenge = true
		case e.Method == http.MethodGet && strings.HasPrefix(e.URL, strings.TrimSuffix(c.as.issuer, "/")+"/.well-known/") && e.Status == http.StatusOK:
			sawASMetadata = true
		case e.Form["grant_type"] == "client_credentials":
			sawTokenRequest = true
			if !strings.HasPrefix(e.URL, c.as.issuer) || e.Status != http.StatusOK {
				t.Errorf("token request %s %s: status %d, want 200 from the AS", e.Method, e.URL, e.Status)
			}
			if e.Form["resource"] != c.g.resource {
				t.Errorf("token request resource = %q, want %q", e.Form["resource"], c.g.resource)
			}
		case strings.HasPrefix(e.URL, c.g.resource) && e.Authorization && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden):
			t.Errorf("%s %s with the token: %d", e.Method, e.URL, e.Status)
		}
	}
	if !sawChallenge || !sawASMetadata || !sawTokenRequest {
		t.Errorf("discovery incomplete (401 challenge %v, AS metadata %v, token request %v); trace: %+v",
			sawChallenge, sawASMetadata, sawTokenRequest, rep.Trace)
	}

	after := c.g.metrics(t)
	if d := after.introspectionTotal() - before.introspectionTotal(); d != 1 {
		t.Errorf("the gateway made %v introspection calls for the npm session, want 1", d)
	}
}
