package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/nodeclient"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/procutil"
)

// inspectorReport is what inspector-login.mjs prints.
type inspectorReport struct {
	Login struct {
		URL, Client, Resource, Scopes string
	} `json:"login"`
	Protocol string   `json:"protocol"`
	Tools    []string `json:"tools"`
	Result   string   `json:"result"`  // the Results panel's text
	Visited  []string `json:"visited"` // the tab's main-frame URLs, without queries
}

// inspectorURL matches the line the Inspector prints when its web UI is up.
var inspectorURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/?\?MCP_INSPECTOR_API_TOKEN=[0-9a-f]+`)

// startInspector runs the MCP Inspector's web UI (the npm package locked in
// examples/deployment/inspector) for mcpURL on free loopback ports, with
// its storage in a temporary directory, and returns the URL it prints.
func startInspector(t *testing.T, mcpURL string) string {
	t.Helper()
	dir := nodeclient.ExamplesDir(t, "deployment", "inspector")
	nodeclient.RequireDir(t, dir)
	port := func() string {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		return p
	}
	home := t.TempDir()
	cmd := exec.Command("node", "node_modules/.bin/mcp-inspector", "--web", "--transport", "http", "--server-url", mcpURL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CLIENT_PORT="+port(), "MCP_SANDBOX_PORT="+port(), "MCP_APP_ORIGIN_PORT="+port(),
		"MCP_AUTO_OPEN_ENABLED=false", "HOME="+home, "MCP_STORAGE_DIR="+home, "MCP_INSPECTOR_SECRET_STORE=memory",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	procutil.SetProcessGroup(cmd)
	procutil.SetParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the MCP Inspector: %v", err)
	}
	exited := make(chan struct{})
	found := make(chan string, 1)
	var output strings.Builder
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if m := inspectorURL.FindString(line); m != "" {
				select {
				case found <- m:
				default:
				}
			} else if len(output.String()) < 8<<10 {
				output.WriteString(line + "\n") // never the line with its token
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { procutil.StopGroup(cmd, exited, 5*time.Second) })
	select {
	case u := <-found:
		return u
	case <-exited:
		t.Fatalf("the MCP Inspector exited before it was up:\n%s", output.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the MCP Inspector printed no URL within 60s:\n%s", output.String())
	}
	return ""
}

// TestMCPInspector: the MCP Inspector (npm, its web UI in Debian's
// Chromium) against the deployment, the way a person uses it: switching
// the server on runs discovery, dynamic registration and the login page;
// after alice logs in, it lists the tools and runs my_data, which shows her
// notes from the API.
func TestMCPInspector(t *testing.T) {
	nodeclient.Require(t)
	nodeclient.RequireChromium(t)
	s, err := startStack(options{listen: freeAddr(t), asListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	url := startInspector(t, s.mcpURL)
	mcpBefore := len(s.mcpSeen.requests())

	alice := demoUsers[0]
	var rep inspectorReport
	nodeclient.RunJSON(t, &rep, "inspector-login.mjs", url, alice.name, alice.password)
	t.Logf("login page %s: %q, %q, %q; %s; tools %v; result %q", rep.Login.URL, rep.Login.Client, rep.Login.Resource, rep.Login.Scopes, rep.Protocol, rep.Tools, rep.Result)

	if rep.Login.URL != s.as.URL+demoas.AuthorizationPath || !strings.Contains(rep.Login.Client, "MCP Inspector") ||
		!strings.Contains(rep.Login.Resource, s.mcpURL) || rep.Login.Scopes != mcpScope {
		t.Errorf("the Inspector's login page: %+v", rep.Login)
	}
	if !slices.ContainsFunc(rep.Visited, func(u string) bool { return strings.HasSuffix(u, "/oauth/callback") }) {
		t.Errorf("the tab never came back to the Inspector's OAuth callback: %v", rep.Visited)
	}
	if !slices.Contains(rep.Tools, "my_data") || rep.Protocol == "" {
		t.Errorf("tools %v, protocol %q", rep.Tools, rep.Protocol)
	}
	for _, want := range append([]string{`"user": "alice"`}, alice.notes...) {
		if !strings.Contains(rep.Result, want) {
			t.Errorf("the Inspector's my_data result %q lacks %q", rep.Result, want)
		}
	}
	s.wantSubjects(t, "the MCP server", s.mcpSeen.requests()[mcpBefore:], s.mcpURL, alice.name)
}
