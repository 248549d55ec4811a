package fleet

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/dpopclient"
)

// dpopHTU is what a proof names for GET /mcp on any node: the origin of
// the fleet's resource (the address clients use, a load balancer's) and
// the path. The nodes themselves listen on loopback ports of their own.
const dpopHTU = "https://mcp.example.com/mcp"

// dpopGet sends GET /mcp with "Authorization: DPoP <token>" and the proof,
// and returns the status and the response headers (status 0 on a
// transport error).
func (n *node) dpopGet(token, proof string) (int, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, n.url+"/mcp", nil)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// dpopFleet is a bound token and its key at the stub AS.
type dpopFleet struct {
	as    *stubAS
	up    string
	key   *dpopclient.Key
	token string
}

func newDPoPFleet(t *testing.T) *dpopFleet {
	t.Helper()
	key, err := dpopclient.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	f := &dpopFleet{as: newStubAS(t), up: newUpstream(t), key: key, token: "tok-dpop-bound"}
	f.as.extra[f.token] = map[string]any{"cnf": map[string]any{"jkt": key.Thumbprint()}}
	return f
}

func (f *dpopFleet) proof(t *testing.T, nonce string) string {
	t.Helper()
	p, err := f.key.Proof(http.MethodGet, dpopHTU, f.token, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// want sends the proof to n and checks the status and, for a 401, that
// the DPoP challenge has error="wantError". It returns the DPoP-Nonce
// header.
func (f *dpopFleet) want(t *testing.T, n *node, what, proof string, status int, wantError string) string {
	t.Helper()
	got, h := n.dpopGet(f.token, proof)
	challenge := h.Get("WWW-Authenticate")
	if got != status || (wantError != "" && (!strings.HasPrefix(challenge, "DPoP ") || !strings.Contains(challenge, `error="`+wantError+`"`))) {
		t.Fatalf("%s on %s: %d %q, want %d %s", what, n.url, got, h.Values("WWW-Authenticate"), status, wantError)
	}
	return h.Get("DPoP-Nonce")
}

const rejections = "caddy_phantom_token_sender_constraint_rejections_total"

// TestFleetSharesDPoPReplayRecord: two gateway processes sharing Redis,
// both serving the fleet's resource (so a proof names the same htu
// whichever node gets it). A proof used on node 1 is a replay on node 2
// (401 invalid_dpop_proof, counted dpop_replay there) and the other way
// round; a fresh proof passes on either. The jti record is in Redis: the
// processes share nothing else.
func TestFleetSharesDPoPReplayRecord(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		f := newDPoPFleet(t)
		o := nodeOptions{redisAddrs: addrs, directives: "\t\tdpop {\n\t\t\trequired\n\t\t}"}
		n1 := startNode(t, f.as, f.up, o)
		n2 := startNode(t, f.as, f.up, o)

		p1 := f.proof(t, "")
		f.want(t, n1, "a proof", p1, 200, "")
		f.want(t, n2, "node 1's proof replayed", p1, 401, "invalid_dpop_proof")
		p2 := f.proof(t, "")
		f.want(t, n2, "a fresh proof", p2, 200, "")
		f.want(t, n1, "node 2's proof replayed", p2, 401, "invalid_dpop_proof")
		f.want(t, n1, "node 1's proof replayed on node 1", p1, 401, "invalid_dpop_proof")
		f.want(t, n1, "another fresh proof", f.proof(t, ""), 200, "")

		for _, c := range []struct {
			n    *node
			want float64
		}{{n1, 2}, {n2, 1}} {
			if got := c.n.metric(t, rejections, `reason="dpop_replay"`); got != c.want {
				t.Errorf("%s counted %v dpop_replay rejections, want %v", c.n.url, got, c.want)
			}
			if got := c.n.metric(t, rejections, `reason="dpop_invalid"`) + c.n.metric(t, rejections, `reason="binding_mismatch"`); got != 0 {
				t.Errorf("%s counted %v other sender-constraint rejections, want 0", c.n.url, got)
			}
		}
		if c := f.as.callsFor(f.token); c != 1 {
			t.Errorf("AS calls for the bound token on two nodes = %d, want 1 (the binding is shared with the entry)", c)
		}
	})
}

// TestFleetSharesDPoPNonces: with dpop nonce, the nonce key is derived
// from the fleet's Redis secret, so a nonce node 1 issued (401
// use_dpop_nonce with DPoP-Nonce) is accepted by node 2 and the other way
// round, and a proof carrying it is still single-use across the fleet. A
// gateway with another secret (another fleet on the same Redis) does not
// accept the fleet's nonces, nor the fleet its.
func TestFleetSharesDPoPNonces(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		f := newDPoPFleet(t)
		o := nodeOptions{redisAddrs: addrs, directives: "\t\tdpop {\n\t\t\tnonce\n\t\t}"}
		n1 := startNode(t, f.as, f.up, o)
		n2 := startNode(t, f.as, f.up, o)
		o.secret = "another-fleet"
		other := startNode(t, f.as, f.up, o)

		nonce1 := f.want(t, n1, "a proof without a nonce", f.proof(t, ""), 401, "use_dpop_nonce")
		if nonce1 == "" {
			t.Fatal("node 1 answered use_dpop_nonce without a DPoP-Nonce header")
		}
		withNonce1 := f.proof(t, nonce1)
		f.want(t, n2, "node 1's nonce", withNonce1, 200, "")
		f.want(t, n1, "node 1's nonce, the proof replayed", withNonce1, 401, "invalid_dpop_proof")
		f.want(t, n1, "node 1's nonce, a fresh proof", f.proof(t, nonce1), 200, "")

		nonce2 := f.want(t, n2, "a proof without a nonce", f.proof(t, ""), 401, "use_dpop_nonce")
		if nonce2 == "" {
			t.Fatal("node 2 answered use_dpop_nonce without a DPoP-Nonce header")
		}
		f.want(t, n1, "node 2's nonce", f.proof(t, nonce2), 200, "")

		nonceOther := f.want(t, other, "the fleet's nonce on another fleet's node", f.proof(t, nonce1), 401, "use_dpop_nonce")
		if nonceOther == "" || nonceOther == nonce1 {
			t.Fatalf("another fleet's node answered DPoP-Nonce %q (the fleet's is %q)", nonceOther, nonce1)
		}
		f.want(t, other, "its own nonce", f.proof(t, nonceOther), 200, "")
		f.want(t, n1, "another fleet's nonce", f.proof(t, nonceOther), 401, "use_dpop_nonce")

		if got := n1.metric(t, rejections, `reason="dpop_replay"`); got != 1 {
			t.Errorf("node 1 counted %v dpop_replay rejections, want 1", got)
		}
	})
}
