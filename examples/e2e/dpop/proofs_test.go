package dpop

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
)

// routeDPoP is the dpop block of these tests: Bearer is accepted too (for
// unbound tokens), and proofs may be ES256 or EdDSA.
const routeDPoP = `dpop {
	algorithms ES256 EdDSA
}`

// TestDPoPBoundTokensThroughGateway: oidc-provider issues an opaque token
// bound to the agent's key (ES256, then EdDSA); the gateway introspects it
// (JSON: token_type DPoP, cnf.jkt) and signs the JWT it forwards.
//
//   - Good proofs pass on the cache miss and on a hit (one introspection):
//     the MCP server gets one Bearer JWT it accepts, carrying cnf.jkt = the
//     key's thumbprint, never the opaque token, never a DPoP header.
//   - A valid proof by another key: 401 DPoP error="invalid_token"
//     (binding_mismatch), not forwarded.
//   - The token sent as Bearer: 401 invalid_token (binding_mismatch).
//   - A replayed proof: 401 DPoP error="invalid_dpop_proof" (dpop_replay).
//   - DPoP without a proof: 401 invalid_dpop_proof (dpop_invalid).
//
// And an unbound Bearer token from the same AS still passes the route, and
// the protected resource metadata advertises the route's algorithms.
func TestDPoPBoundTokensThroughGateway(t *testing.T) {
	s := startStack(t, false)
	s.load(t, routeDPoP)

	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			key := newKey(t, alg)
			tok := s.dpopToken(t, key)

			before := s.metrics(t)
			for _, step := range []string{"miss", "hit"} {
				up := s.upstream.Count()
				resp, body := s.postInitialize(t, "DPoP "+tok, proof(t, key, http.MethodPost, s.resource, tok, ""))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: good proof: %d %q %s", step, resp.StatusCode, resp.Header.Values("WWW-Authenticate"), body)
				}
				reqs := s.upstream.Since(up)
				if len(reqs) != 1 {
					t.Fatalf("%s: the MCP server got %d requests, want 1", step, len(reqs))
				}
				claims := forwardedJWT(t, reqs[0], tok)
				if got := jkt(claims); got != key.Thumbprint() {
					t.Errorf("%s: forwarded JWT cnf = %v, want jkt %s", step, claims["cnf"], key.Thumbprint())
				}
				if claims["iss"] != s.url || claims["client_id"] != agentID {
					t.Errorf("%s: forwarded JWT iss %v client_id %v, want %s and %s", step, claims["iss"], claims["client_id"], s.url, agentID)
				}
			}
			after := s.metrics(t)
			if d := after.requests["miss"] - before.requests["miss"]; d != 1 {
				t.Errorf("cache misses +%v, want +1", d)
			}
			if d := after.requests["hit"] - before.requests["hit"]; d != 1 {
				t.Errorf("cache hits +%v, want +1", d)
			}
			if d := after.introspections - before.introspections; d != 1 {
				t.Errorf("introspections +%v, want +1", d)
			}

			other := newKey(t, alg)
			replayed := proof(t, key, http.MethodPost, s.resource, tok, "")
			if resp, body := s.postInitialize(t, "DPoP "+tok, replayed); resp.StatusCode != http.StatusOK {
				t.Fatalf("first use of a proof: %d %s", resp.StatusCode, body)
			}
			for _, c := range []struct {
				name          string
				authorization string
				proofs        []string
				wantError     string // in the first challenge, which is DPoP
				reason        string // the rejection counted
			}{
				{"a valid proof by another key", "DPoP " + tok, []string{proof(t, other, http.MethodPost, s.resource, tok, "")}, "invalid_token", "binding_mismatch"},
				{"the token sent as Bearer", "Bearer " + tok, nil, "invalid_token", "binding_mismatch"},
				{"a replayed proof", "DPoP " + tok, []string{replayed}, "invalid_dpop_proof", "dpop_replay"},
				{"DPoP without a proof", "DPoP " + tok, nil, "invalid_dpop_proof", "dpop_invalid"},
			} {
				before := s.metrics(t)
				up := s.upstream.Count()
				resp, body := s.postInitialize(t, c.authorization, c.proofs...)
				ch := resp.Header.Values("WWW-Authenticate")
				if resp.StatusCode != http.StatusUnauthorized || len(ch) != 2 ||
					!strings.HasPrefix(ch[0], "DPoP ") || !strings.Contains(ch[0], `error="`+c.wantError+`"`) ||
					!strings.Contains(ch[0], `algs="ES256 EdDSA"`) || !strings.HasPrefix(ch[1], "Bearer ") {
					t.Errorf("%s: %d %q %s; want 401 with a DPoP error=%q challenge and a Bearer one", c.name, resp.StatusCode, ch, body, c.wantError)
				}
				if n := s.upstream.Count() - up; n != 0 {
					t.Errorf("%s: forwarded to the MCP server", c.name)
				}
				after := s.metrics(t)
				for _, reason := range []string{"binding_mismatch", "dpop_replay", "dpop_invalid"} {
					want := 0.0
					if reason == c.reason {
						want = 1
					}
					if d := after.rejections[reason] - before.rejections[reason]; d != want {
						t.Errorf("%s: sender_constraint_rejections_total{reason=%q} +%v, want +%v", c.name, reason, d, want)
					}
				}
			}
			// The token is still good with a good proof.
			if resp, body := s.postInitialize(t, "DPoP "+tok, proof(t, key, http.MethodPost, s.resource, tok, "")); resp.StatusCode != http.StatusOK {
				t.Errorf("a good proof after the refusals: %d %s", resp.StatusCode, body)
			}
		})
	}

	t.Run("an unbound Bearer token still passes", func(t *testing.T) {
		tok := s.as.ClientCredentialsToken(t, plainID, plainSecret, scopeTools, s.resource)
		up := s.upstream.Count()
		if resp, body := s.postInitialize(t, "Bearer "+tok); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		reqs := s.upstream.Since(up)
		if len(reqs) != 1 {
			t.Fatalf("the MCP server got %d requests, want 1", len(reqs))
		}
		if claims := forwardedJWT(t, reqs[0], tok); claims["cnf"] != nil {
			t.Errorf("an unbound token's JWT has cnf %v", claims["cnf"])
		}
	})

	t.Run("the metadata advertises DPoP", func(t *testing.T) {
		resp, body := gatewaytest.Do(t, s.client, http.MethodGet, s.url+"/.well-known/oauth-protected-resource/mcp", "")
		var md map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &md) != nil {
			t.Fatalf("metadata: %d %s", resp.StatusCode, body)
		}
		algs, _ := md["dpop_signing_alg_values_supported"].([]any)
		if !slices.Equal(algs, []any{"ES256", "EdDSA"}) || md["dpop_bound_access_tokens_required"] == true || md["resource"] != s.resource {
			t.Errorf("metadata %s: want resource %s, dpop_signing_alg_values_supported [ES256 EdDSA], DPoP not required", body, s.resource)
		}
	})

	t.Run("no proof reached the MCP server", func(t *testing.T) {
		for i, r := range s.upstream.Requests() {
			if len(r.Header.Values("DPoP")) != 0 || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
				t.Errorf("upstream request %d (%s): Authorization %.20q…, DPoP %d values", i, r.Method, r.Header.Get("Authorization"), len(r.Header.Values("DPoP")))
			}
		}
	})
}
