// Package nodeclient runs the Node.js client scripts of examples/e2e/node
// for the Go tests (the npm MCP SDK clients: static-token.mjs,
// client-credentials.mjs, save-note.mjs, browser-login.mjs; and
// inspector-login.mjs, which drives the MCP Inspector of
// examples/deployment/inspector), and makes sure Node.js, Chromium and the
// locked npm packages are there first.
//
// With CI=true a missing or stale install fails the test (scripts/test.sh
// runs `npm ci` for every committed lock file before the tests); otherwise
// the test runs `npm ci` itself, so a fresh clone's `go test` works. It never
// skips.
package nodeclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/procutil"
)

const (
	// npmTimeout bounds `npm ci`.
	npmTimeout = 3 * time.Minute
	// runTimeout bounds one script run.
	runTimeout = 90 * time.Second
)

// Report is the JSON line a script prints last.
type Report struct {
	SessionID string   `json:"sessionId"`
	Tools     []string `json:"tools"`
	Whoami    string   `json:"whoami"` // the whoami tool's text
	// SaveNote is the outcome of the save_note call (save-note.mjs only).
	SaveNote *ToolOutcome `json:"saveNote"`
	Trace    []TraceEntry `json:"trace"`
}

// ToolOutcome is what one tools/call came to.
type ToolOutcome struct {
	OK    bool   `json:"ok"`
	Text  string `json:"text"`  // the result's text content
	Error string `json:"error"` // the error the SDK threw, when it threw
}

// TraceEntry is one HTTP request the npm SDK made. It never holds a token
// or a secret.
type TraceEntry struct {
	Method        string            `json:"method"`
	URL           string            `json:"url"`
	Authorization bool              `json:"authorization"` // whether it carried one
	Status        int               `json:"status"`
	Form          map[string]string `json:"form"`            // a form body, secrets left out
	RPCMethod     string            `json:"rpcMethod"`       // a JSON-RPC body's method
	RPCName       string            `json:"rpcName"`         // and its params.name
	Challenge     string            `json:"wwwAuthenticate"` // the response's WWW-Authenticate
	Error         string            `json:"error"`
}

// Dir returns the absolute path of examples/e2e/node (the scripts,
// package.json and package-lock.json), found from this source file, so it
// does not depend on the test's working directory.
func Dir(t testing.TB) string {
	t.Helper()
	return ExamplesDir(t, "e2e", "node")
}

// ExamplesDir returns the absolute path of a folder of the examples module,
// found from this source file.
func ExamplesDir(t testing.TB, elem ...string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("nodeclient: cannot locate the source directory (runtime.Caller)")
	}
	return filepath.Join(append([]string{filepath.Dir(file), "..", ".."}, elem...)...)
}

var (
	npmMu   sync.Mutex
	npmDone = map[string]error{} // dir → the outcome of this binary's npm ci
)

// Require makes sure node and the npm packages examples/e2e/node pins are
// installed: RequireDir for that folder.
func Require(t testing.TB) {
	t.Helper()
	RequireDir(t, Dir(t))
}

// RequireDir makes sure node and the npm packages dir's package.json pins
// are installed. Under CI=true a missing piece fails the test; locally the
// first call for dir runs `npm ci` there (once per test binary, and one
// test binary at a time).
func RequireDir(t testing.TB, dir string) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if _, err := exec.LookPath("node"); err != nil {
		// The test suite needs Node.js (README); a missing one fails
		// loudly rather than passing with the npm client untested.
		t.Fatal("node is not installed; the npm client tests need Node.js 20+")
	}
	if err := installedMatchesLock(dir); err == nil {
		return
	} else if ci {
		t.Fatalf("%v: run `npm ci --prefix %s` before the tests (CI=true, so the test does not install it)", err, dir)
	}
	npmMu.Lock()
	err, done := npmDone[dir]
	if !done {
		err = npmCI(dir)
		npmDone[dir] = err
	}
	npmMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := installedMatchesLock(dir); err != nil {
		t.Fatal(err)
	}
}

// npmCI runs `npm ci` in dir unless another test binary has installed the
// packages while this one waited for the lock.
func npmCI(dir string) error {
	lockPath := filepath.Join(os.TempDir(), "phantom-token-examples-npm.lock")
	unlock, err := procutil.LockFile(lockPath, 0o600)
	if err != nil {
		return errors.New("npm install lock " + lockPath + ": " + err.Error())
	}
	defer unlock()
	if installedMatchesLock(dir) == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New("npm ci in " + dir + ": " + err.Error() + "\n" + string(out))
	}
	return nil
}

// installedMatchesLock reports whether dir's node_modules holds every
// dependency at the version package.json pins (exact versions only).
func installedMatchesLock(dir string) error {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return err
	}
	for name, want := range pkg.Dependencies {
		var installed struct {
			Version string `json:"version"`
		}
		raw, err = os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
		if err != nil {
			return errors.New(dir + "/node_modules has no " + name)
		}
		if err := json.Unmarshal(raw, &installed); err != nil {
			return err
		}
		if installed.Version != want {
			return errors.New(dir + "/node_modules has " + name + " " + installed.Version + ", package.json pins " + want)
		}
	}
	return nil
}

// Run runs script (a file of examples/e2e/node) with node, after Require,
// and returns the report it printed on its last line of stdout. A failing
// script or a missing report fails the test; the script's stderr goes to the
// test log. The arguments may hold a token or a secret, so they are never
// logged.
func Run(t testing.TB, script string, args ...string) Report {
	t.Helper()
	var rep Report
	RunJSON(t, &rep, script, args...)
	return rep
}

// RunJSON is Run for a script whose report has another shape: the last line
// of its stdout is decoded into report.
func RunJSON(t testing.TB, report any, script string, args ...string) {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = Dir(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", script, err, stderr.String(), stdout.String())
	}
	if stderr.Len() > 0 {
		t.Logf("node %s stderr:\n%s", script, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), report); err != nil {
		t.Fatalf("node %s printed no JSON report: %v\n%s", script, err, stdout.String())
	}
}

// Chromium is the browser browser-login.mjs drives: $CHROMIUM, or Debian's
// chromium package.
func Chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// RequireChromium fails the test when the browser is missing: the login
// tests need a real one, and never skip. scripts/test.sh installs Debian's
// chromium when it runs as root.
func RequireChromium(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(Chromium()); err != nil {
		t.Fatalf("no browser at %s (%v): install Debian's chromium (apt-get install chromium) or set CHROMIUM", Chromium(), err)
	}
}
