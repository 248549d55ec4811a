package authservers

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// readmePath is the page of the repository's docs that holds the
// authorization-server configs (moved there from the README to keep the
// README short), from this package's directory.
var readmePath = filepath.Join("..", "..", "..", "docs", "authorization-servers.md")

// asConfigRe matches a tested config: the marker, then the caddyfile block
// right after it.
var asConfigRe = regexp.MustCompile("(?s)<!-- as-config: ([A-Za-z0-9_.-]+) -->[ \t]*\r?\n```caddyfile\r?\n(.*?)\r?\n```")

// envRe matches a Caddyfile environment value, {$NAME} or {$NAME:default},
// substituted when the Caddyfile is adapted.
var envRe = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}`)

// runtimeEnvRe matches {env.NAME}, read by the module at provisioning.
var runtimeEnvRe = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// readmeConfigs returns every marked config of the README by name.
func readmeConfigs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatalf("reading %s: %v", readmePath, err)
	}
	configs := map[string]string{}
	for _, m := range asConfigRe.FindAllStringSubmatch(string(raw), -1) {
		if _, dup := configs[m[1]]; dup {
			t.Fatalf("docs/authorization-servers.md: two configs are marked as-config: %s", m[1])
		}
		configs[m[1]] = m[2]
	}
	// A marker not followed by a caddyfile block would be silently ignored
	// by the regexp above: count the markers too.
	if n := strings.Count(string(raw), "<!-- as-config: "); n != len(configs) {
		t.Fatalf("docs/authorization-servers.md: %d as-config markers, but only %d are followed by a ```caddyfile block", n, len(configs))
	}
	return configs
}

// readmeConfig returns the README block marked as-config: name, exactly as
// written there.
func readmeConfig(t *testing.T, name string) string {
	t.Helper()
	block, ok := readmeConfigs(t)[name]
	if !ok {
		t.Fatalf("docs/authorization-servers.md has no block marked <!-- as-config: %s -->", name)
	}
	return block
}

// setEnv sets the environment the block refers to, for the running test. It
// fails when the block uses a value the test does not provide (it would
// silently adapt to an empty string), except {$NAME:default} forms, which
// keep their default unless env sets them.
func setEnv(t *testing.T, block string, env map[string]string) {
	t.Helper()
	for _, m := range envRe.FindAllStringSubmatch(block, -1) {
		if _, ok := env[m[1]]; !ok && m[2] == "" {
			t.Fatalf("the README block uses {$%s}, which this test does not set", m[1])
		}
	}
	for _, m := range runtimeEnvRe.FindAllStringSubmatch(block, -1) {
		if _, ok := env[m[1]]; !ok {
			t.Fatalf("the README block uses {env.%s}, which this test does not set", m[1])
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestReadmeTestedConfigsAreLoaded: every config the page marks as tested
// carries an as-config marker, and each marker names a case of
// TestAuthorizationServers, so no tested config goes unrun and no test runs
// a config the page does not show.
func TestReadmeTestedConfigsAreLoaded(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	section := string(raw)

	// Each "## … (tested…)" heading has a marker before the next heading,
	// and only those.
	headings := regexp.MustCompile(`(?m)^## .*$`).FindAllStringIndex(section, -1)
	tested := 0
	for i, h := range headings {
		title := section[h[0]:h[1]]
		body := section[h[1]:]
		if i+1 < len(headings) {
			body = section[h[1]:headings[i+1][0]]
		}
		hasMarker := strings.Contains(body, "<!-- as-config: ")
		isTested := strings.Contains(title, "(tested")
		switch {
		case isTested && !hasMarker:
			t.Errorf("%q is marked tested but has no as-config marker", title)
		case !isTested && hasMarker:
			t.Errorf("%q has an as-config marker but is not marked tested", title)
		}
		if isTested {
			tested++
		}
	}

	var readmeNames, testNames []string
	for name := range readmeConfigs(t) {
		readmeNames = append(readmeNames, name)
	}
	for _, c := range cases() {
		testNames = append(testNames, c.name)
	}
	sort.Strings(readmeNames)
	sort.Strings(testNames)
	if !slices.Equal(readmeNames, testNames) {
		t.Errorf("as-config names %v, TestAuthorizationServers cases %v: they must be the same", readmeNames, testNames)
	}
	if tested != len(readmeNames) {
		t.Errorf("%d headings marked tested, %d as-config blocks", tested, len(readmeNames))
	}
	if got := len(asConfigRe.FindAllString(section, -1)); got != len(readmeNames) {
		t.Errorf("%d as-config blocks in the Authorization servers section, %d in the whole README", got, len(readmeNames))
	}
}
