package gatewaytest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
)

// LogScan is a DEBUG log file that every Caddy config of a test package
// writes to, and the scan that checks it after the tests (from TestMain):
// no line may carry an opaque token, a JWT, a client secret or a private
// key (DESIGN §7). DEBUG is where a careless field shows first.
type LogScan struct {
	// Path is the log file: put it in each config's global options with
	// [LogScan.GlobalLog].
	Path    string
	secrets []string

	mu     sync.Mutex
	tokens map[string]bool
}

// NewLogScan logs to a file in dir and looks for secrets (the client
// secrets the package's configs and clients use) besides tokens and JWTs.
func NewLogScan(dir string, secrets ...string) *LogScan {
	return &LogScan{Path: dir + "/debug.log", secrets: secrets, tokens: map[string]bool{}}
}

// GlobalLog is the Caddyfile global option that sends the default logger,
// at DEBUG, to the scanned file.
func (s *LogScan) GlobalLog() string {
	return "log default {\n\t\toutput file " + s.Path + "\n\t\tformat json\n\t\tlevel DEBUG\n\t}"
}

// NoteToken adds an opaque token the tests obtained to what the scan
// looks for. Short strings are ignored: they would match ordinary words.
func (s *LogScan) NoteToken(token string) {
	if len(token) < 8 {
		return
	}
	s.mu.Lock()
	s.tokens[token] = true
	s.mu.Unlock()
}

var (
	// jwtPattern is a compact JWS: three base64url segments, the first
	// a JSON object ("eyJ" is base64url of `{"`).
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)
	// fositeToken is an access or refresh token of the fosite-based
	// authorization servers (the demo AS, Hydra).
	fositeToken = regexp.MustCompile(`ory_(at|rt|ac)_[A-Za-z0-9_-]{8,}`)
	// privateJWK is the private exponent or scalar of a JWK.
	privateJWK = regexp.MustCompile(`\\?"(d|p|q|dp|dq|qi)\\?"\s*:`)
)

// Scan reads the log and reports on w; it returns the exit code: 1 when a
// line carries a secret, or when the log holds no DEBUG line although
// configs were loaded (loaded > 0), since the scan would then prove
// nothing.
func (s *LogScan) Scan(w io.Writer, loaded bool) int {
	if !loaded {
		return 0
	}
	f, err := os.Open(s.Path)
	if err != nil {
		fmt.Fprintf(w, "log scan: configs were loaded but the debug log cannot be read: %v\n", err)
		return 1
	}
	defer f.Close()
	s.mu.Lock()
	tokens := make([]string, 0, len(s.tokens))
	for tok := range s.tokens {
		tokens = append(tokens, tok)
	}
	s.mu.Unlock()

	lines, debug := 0, 0
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines++
		if strings.Contains(sc.Text(), `"level":"debug"`) {
			debug++
		}
		if what, redacted := FindSecret(sc.Text(), tokens, s.secrets); what != "" {
			if len(redacted) > 400 {
				redacted = redacted[:400] + "…"
			}
			bad = append(bad, what+": "+redacted)
		}
	}
	switch {
	case sc.Err() != nil:
		fmt.Fprintln(w, "log scan: reading the debug log:", sc.Err())
		return 1
	case debug == 0:
		fmt.Fprintf(w, "log scan: %d log lines, none at DEBUG: the scan proves nothing\n", lines)
		return 1
	case len(bad) > 0:
		fmt.Fprintf(w, "log scan: %d of %d log lines carry a secret (shown redacted):\n", len(bad), lines)
		for _, b := range bad[:min(20, len(bad))] {
			fmt.Fprintln(w, "  "+b)
		}
		return 1
	}
	fmt.Fprintf(w, "log scan: %d log lines (%d at DEBUG), %d tokens looked for: clean\n", lines, debug, len(tokens))
	return 0
}

// FindSecret names the kinds of secret in line and returns the line with
// each one replaced, so that a report does not repeat them.
func FindSecret(line string, tokens, secrets []string) (what, redacted string) {
	redacted = line
	var kinds []string
	for _, p := range []struct {
		re   *regexp.Regexp
		kind string
	}{{jwtPattern, "jwt"}, {fositeToken, "opaque token"}} {
		if p.re.MatchString(redacted) {
			kinds = append(kinds, p.kind)
			redacted = p.re.ReplaceAllString(redacted, "<"+p.kind+">")
		}
	}
	if strings.Contains(redacted, "PRIVATE KEY") {
		kinds = append(kinds, "pem private key")
	}
	if privateJWK.MatchString(redacted) {
		kinds = append(kinds, "jwk private member")
	}
	for _, s := range secrets {
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
