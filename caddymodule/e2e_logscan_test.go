package caddymodule_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The end-to-end tests run every Caddy config with the default logger at
// DEBUG, written to one file; TestMain scans that file after the suite for
// anything a log line must never carry (DESIGN §7): opaque tokens, JWTs,
// client secrets, private keys. DEBUG is where a careless field would show
// first, so that is the level the scan reads.
var debugLog struct {
	path  string
	loads atomic.Int64 // configs loaded: no load, nothing to scan
}

// knownSecrets are the client secrets the e2e configs use.
var knownSecrets = []string{"s3cret"}

// minSecretLen keeps short fixture tokens ("x", "tok") out of the scan,
// where they would match ordinary words; every scripted token in the e2e
// tests is longer.
const minSecretLen = 8

// scannedTokens is every opaque token the tests scripted at an AS or sent
// to a gateway.
var scannedTokens = struct {
	sync.Mutex
	set map[string]bool
}{set: map[string]bool{}}

// noteSecret adds a token to the set the log scan looks for.
func noteSecret(token string) {
	if len(token) < minSecretLen {
		return
	}
	scannedTokens.Lock()
	scannedTokens.set[token] = true
	scannedTokens.Unlock()
}

// noteAuthorization records the token of an Authorization header value.
func noteAuthorization(value string) {
	if scheme, token, ok := strings.Cut(strings.TrimSpace(value), " "); ok && (strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "dpop")) {
		noteSecret(strings.TrimSpace(token))
	}
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phantom-e2e-log-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the debug log directory:", err)
		os.Exit(2)
	}
	debugLog.path = filepath.Join(dir, "debug.log")
	code := m.Run()
	// The scan runs whatever the tests' verdict: a leak is worth knowing
	// about while other tests still fail.
	if scan := scanDebugLog(debugLog.path); scan != 0 {
		code = scan
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// globalOptions is the Caddyfile global block of every e2e config: admin
// as given ("off" or a loopback address) and the DEBUG log file.
func globalOptions(admin string) string {
	return `{
	admin ` + admin + `
	auto_https off
	persist_config off
	log {
		output file ` + debugLog.path + `
		format json
		level DEBUG
	}
}
`
}

// siteConfig builds a whole Caddyfile from a site body with {AS},
// {UPSTREAM} and {LISTEN} filled in.
func siteConfig(admin, listen, asURL, upstreamURL, site string) string {
	r := strings.NewReplacer("{AS}", asURL, "{UPSTREAM}", strings.TrimPrefix(upstreamURL, "http://"), "{LISTEN}", listen)
	return r.Replace(globalOptions(admin) + "http://{LISTEN} {\n" + site + "\n}\n")
}

// adaptCaddyfile turns a whole Caddyfile into JSON config.
func adaptCaddyfile(t *testing.T, cfgText string) []byte {
	t.Helper()
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfgText), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v\n%s", err, cfgText)
	}
	for _, w := range warnings {
		t.Logf("adapt warning: %s", w.String())
	}
	return cfgJSON
}

// loadSite (re)loads a site in-process with admin off, as a config reload
// does.
func loadSite(t *testing.T, g *gateway, asURL, upstreamURL, site string) {
	t.Helper()
	cfgJSON := adaptCaddyfile(t, siteConfig("off", g.addr, asURL, upstreamURL, site))
	debugLog.loads.Add(1)
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading the config: %v", err)
	}
}

var (
	// jwtPattern is a compact JWS: three base64url segments, the first
	// a JSON object ("eyJ" is base64url of `{"`).
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)
	// dpopHeaderPattern is the DPoP request header in a logged request.
	dpopHeaderPattern = regexp.MustCompile(`"Dpop":\[[^\]]*\]`)
	// privateJWK is the private exponent or scalar of a JWK.
	privateJWK = regexp.MustCompile(`\\?"(d|p|q|dp|dq|qi)\\?"\s*:`)
)

// scanDebugLog checks the suite's DEBUG log and returns the exit code:
// 1 when a line carries a secret, or when configs were loaded but nothing
// was logged at DEBUG (the scan would then prove nothing).
func scanDebugLog(path string) int {
	if debugLog.loads.Load() == 0 {
		return 0
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "log scan: %d configs were loaded but the debug log cannot be read: %v\n", debugLog.loads.Load(), err)
		return 1
	}
	defer f.Close()

	scannedTokens.Lock()
	tokens := make([]string, 0, len(scannedTokens.set))
	for tok := range scannedTokens.set {
		tokens = append(tokens, tok)
	}
	scannedTokens.Unlock()

	lines, debugLines := 0, 0
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		lines++
		if strings.Contains(line, `"level":"debug"`) {
			debugLines++
		}
		if what, redacted := findSecret(line, tokens); what != "" {
			bad = append(bad, what+": "+truncate(redacted, 400))
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "log scan: reading the debug log:", err)
		return 1
	}
	if debugLines == 0 {
		fmt.Fprintf(os.Stderr, "log scan: %d configs loaded, %d log lines, none at DEBUG: logging is not at DEBUG, the scan proves nothing\n",
			debugLog.loads.Load(), lines)
		return 1
	}
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "log scan: %d of %d log lines carry a secret (shown redacted):\n", len(bad), lines)
		for i, b := range bad {
			if i == 20 {
				fmt.Fprintf(os.Stderr, "  … and %d more\n", len(bad)-i)
				break
			}
			fmt.Fprintln(os.Stderr, "  "+b)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "log scan: %d log lines (%d at DEBUG) from %d configs, %d tokens looked for: clean\n",
		lines, debugLines, debugLog.loads.Load(), len(tokens))
	return 0
}

// findSecret names the first kind of secret in line and returns the line
// with every secret found replaced, so the report does not repeat them.
func findSecret(line string, tokens []string) (what, redacted string) {
	redacted = line
	var kinds []string
	// What a client sends in the DPoP header is its proof, not a secret:
	// a proof is bound to one token (by its hash), method and URL, expires
	// within a minute and is single-use at the gateway. Caddy logs request
	// headers (it redacts Authorization, not DPoP), so proofs, and
	// whatever else a client puts there, appear in its logs; the README
	// says how to filter them out.
	redacted = dpopHeaderPattern.ReplaceAllStringFunc(redacted, func(h string) string {
		return jwtPattern.ReplaceAllString(h, "<dpop proof>")
	})
	if jwtPattern.MatchString(redacted) {
		kinds = append(kinds, "jwt")
		redacted = jwtPattern.ReplaceAllString(redacted, "<jwt>")
	}
	if strings.Contains(redacted, "PRIVATE KEY") {
		kinds = append(kinds, "pem private key")
		redacted = strings.ReplaceAll(redacted, "PRIVATE KEY", "<pem>")
	}
	if privateJWK.MatchString(redacted) {
		kinds = append(kinds, "jwk private member")
	}
	for _, s := range knownSecrets {
		if strings.Contains(redacted, s) {
			kinds = append(kinds, "client secret")
			redacted = strings.ReplaceAll(redacted, s, "<secret>")
		}
	}
	for _, tok := range tokens {
		if strings.Contains(redacted, tok) {
			kinds = append(kinds, "opaque token")
			redacted = strings.ReplaceAll(redacted, tok, "<token>")
		}
	}
	return strings.Join(kinds, ", "), redacted
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// The log scan is only worth something when the module's DEBUG lines reach
// the file it reads: an AS failure must leave an "introspection failed"
// DEBUG entry naming the token by fingerprint, and never by value.
func TestLogScanSeesDebugLines(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	as.status("logscan-failing-token", http.StatusInternalServerError)
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer logscan-failing-token"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502", resp.StatusCode)
	}
	sum := sha256.Sum256([]byte("logscan-failing-token"))
	want := `"token_fingerprint":"` + hex.EncodeToString(sum[:6]) + `"`
	var found string
	deadline := time.Now().Add(5 * time.Second)
	for found == "" && time.Now().Before(deadline) {
		data, _ := os.ReadFile(debugLog.path)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"level":"debug"`) && strings.Contains(line, "introspection failed") && strings.Contains(line, want) {
				found = line
				break
			}
		}
		if found == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if found == "" {
		t.Fatalf("no DEBUG \"introspection failed\" line with %s in %s", want, debugLog.path)
	}
	if strings.Contains(found, "logscan-failing-token") {
		t.Errorf("the debug line names the token: %s", found)
	}
}

// The scan must be able to fail: each kind of secret in a line is found
// and redacted from the report, and an ordinary line passes.
func TestLogScanFindsSecrets(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	tokens := []string{"opaque-token-123"}
	for _, tc := range []struct {
		line, want string
	}{
		{`{"level":"debug","msg":"introspection failed","token_fingerprint":"0a1b2c3d4e5f"}`, ""},
		{`{"msg":"x","authorization":"Bearer ` + jwt + `"}`, "jwt"},
		// A DPoP proof in the logged DPoP header is not a secret; a JWT
		// elsewhere is.
		{`{"msg":"x","headers":{"Dpop":["eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0.c2ln"]}}`, ""},
		{`{"msg":"x","headers":{"Dpop":["eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0.c2ln"],"X":["` + jwt + `"]}}`, "jwt"},
		{`{"msg":"x","token":"opaque-token-123"}`, "opaque token"},
		{`{"msg":"x","client_secret":"s3cret"}`, "client secret"},
		{`{"msg":"-----BEGIN PRIVATE KEY-----"}`, "pem private key"},
		{`{"msg":"x","key":{"kty":"RSA","d":"AAAA"}}`, "jwk private member"},
		{`{"msg":"x","key":"{\"kty\":\"EC\",\"d\":\"AAAA\"}"}`, "jwk private member"},
	} {
		what, redacted := findSecret(tc.line, tokens)
		if what != tc.want {
			t.Errorf("findSecret(%s) = %q, want %q", tc.line, what, tc.want)
		}
		for _, s := range []string{jwt, "opaque-token-123", "s3cret"} {
			if strings.Contains(redacted, s) {
				t.Errorf("the report repeats a secret: %s", redacted)
			}
		}
	}
}
