package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
)

// challenge is one parsed WWW-Authenticate challenge (RFC 9110 §11.6.1).
type challenge struct {
	scheme string
	params map[string]string
}

// bearerChallenge returns the single Bearer challenge of resp, failing the
// test when there is not exactly one WWW-Authenticate header, when it is not
// Bearer, or when a parameter is malformed or repeated (RFC 6750 §3).
func bearerChallenge(t *testing.T, resp *http.Response) challenge {
	t.Helper()
	values := resp.Header.Values("WWW-Authenticate")
	if len(values) != 1 {
		t.Fatalf("want exactly one WWW-Authenticate header, got %q", values)
	}
	c, err := parseChallenge(values[0])
	if err != nil {
		t.Fatalf("WWW-Authenticate %q: %v", values[0], err)
	}
	if !strings.EqualFold(c.scheme, "Bearer") {
		t.Fatalf("WWW-Authenticate scheme = %q, want Bearer", c.scheme)
	}
	return c
}

// parseChallenge parses `scheme name=value, name="quoted \" value", ...`.
func parseChallenge(h string) (challenge, error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if scheme == "" || !isToken(scheme) {
		return challenge{}, fmt.Errorf("bad scheme %q", scheme)
	}
	c := challenge{scheme: scheme, params: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return c, fmt.Errorf("parameter without '=' in %q", rest)
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		if !isToken(name) {
			return c, fmt.Errorf("bad parameter name %q", name)
		}
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var value string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return c, fmt.Errorf("unterminated quoted string for %q", name)
			}
			value, rest = b.String(), rest[i+1:]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			value, rest = rest[:end], rest[end:]
		}
		if _, dup := c.params[name]; dup {
			return c, fmt.Errorf("parameter %q appears twice", name)
		}
		c.params[name] = value
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return c, fmt.Errorf("want ',' between parameters, got %q", rest)
		}
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return c, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// wantParam fails unless the challenge has parameter name with value want.
func (c challenge) wantParam(t *testing.T, name, want string) {
	t.Helper()
	got, ok := c.params[name]
	if !ok {
		t.Errorf("challenge has no %s parameter (params %v)", name, c.params)
		return
	}
	if got != want {
		t.Errorf("challenge %s = %q, want %q", name, got, want)
	}
}

// wantNoParam fails if the challenge has parameter name.
func (c challenge) wantNoParam(t *testing.T, name string) {
	t.Helper()
	if v, ok := c.params[name]; ok {
		t.Errorf("challenge has %s=%q, want none", name, v)
	}
}

// whoamiClaims parses the whoami tool's text: the claims the MCP server
// verified, as a JSON object.
func whoamiClaims(t *testing.T, text string) map[string]any {
	t.Helper()
	claims, err := gatewaytest.WhoamiClaims(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return claims
}

// wantAgentClaims checks the claims of a token the agent client got for the
// gateway's resource: subject and client are the agent, the audience is
// exactly the resource (nothing else the agent may have), and the issuer and
// scope are the demo AS's.
func (s *stack) wantAgentClaims(t *testing.T, claims map[string]any) {
	t.Helper()
	for name, want := range map[string]string{"sub": agentID, "client_id": agentID, "iss": s.as.Issuer} {
		if got, _ := claims[name].(string); got != want {
			t.Errorf("claim %s = %v, want %q", name, claims[name], want)
		}
	}
	if aud := gatewaytest.Audience(claims["aud"]); !slices.Equal(aud, []string{s.resource}) {
		t.Errorf("claim aud = %v, want exactly [%s]", claims["aud"], s.resource)
	}
	if scope, _ := claims["scope"].(string); !slices.Contains(strings.Fields(scope), scopeTools) {
		t.Errorf("claim scope = %v, want it to contain %s", claims["scope"], scopeTools)
	}
	if _, ok := claims["exp"].(float64); !ok {
		t.Errorf("claim exp = %v, want a number", claims["exp"])
	}
}

// wantUpstreamSawOnlyJWTs checks every request that reached the MCP server:
// it carried "Authorization: Bearer <JWT>" with a JOSE header typ at+jwt,
// and the opaque token appears in none of its headers.
func wantUpstreamSawOnlyJWTs(t *testing.T, reqs []gatewaytest.Request, opaque string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no request reached the MCP server")
	}
	for i, r := range reqs {
		for name, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, opaque) {
					t.Errorf("upstream request %d (%s): header %s carries the opaque token", i, r.Method, name)
				}
			}
		}
		authz := r.Header.Values("Authorization")
		if len(authz) != 1 {
			t.Errorf("upstream request %d (%s): %d Authorization headers, want 1", i, r.Method, len(authz))
			continue
		}
		scheme, jwt, _ := strings.Cut(authz[0], " ")
		if scheme != "Bearer" {
			t.Errorf("upstream request %d (%s): Authorization scheme %q, want Bearer", i, r.Method, scheme)
			continue
		}
		if typ := joseType(jwt); !strings.EqualFold(typ, "at+jwt") {
			t.Errorf("upstream request %d (%s): forwarded token is not an at+jwt JWT (JOSE typ %q)", i, r.Method, typ)
		}
	}
}

// joseType returns the typ of a compact JWS's protected header, or "" when
// the value is not a three-segment JWS.
func joseType(compact string) string {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return ""
	}
	var hdr struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(raw, &hdr) != nil {
		return ""
	}
	return hdr.Typ
}

// wantSessionDeleted checks that a DELETE for sessionID reached the MCP
// server and got a 2xx.
func wantSessionDeleted(t *testing.T, reqs []gatewaytest.Request, sessionID string) {
	t.Helper()
	for _, r := range reqs {
		if r.Method == http.MethodDelete && r.Header.Get("Mcp-Session-Id") == sessionID {
			if r.Status < 200 || r.Status > 299 {
				t.Errorf("DELETE of the session reached the MCP server but got status %d", r.Status)
			}
			return
		}
	}
	t.Errorf("no DELETE with Mcp-Session-Id %q reached the MCP server; it saw %s", sessionID, summary(reqs))
}

// summary lists method, session and status of each upstream request.
func summary(reqs []gatewaytest.Request) string {
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = fmt.Sprintf("%s(session=%q, status=%d)", r.Method, r.Header.Get("Mcp-Session-Id"), r.Status)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// wantIntrospections checks how many introspection requests the demo AS served.
func (s *stack) wantIntrospections(t *testing.T, want int64) {
	t.Helper()
	if got := s.as.IntrospectionCalls(); got != want {
		t.Errorf("the AS served %d introspection requests, want %d", got, want)
	}
}
