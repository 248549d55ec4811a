package dpop

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/dpopclient"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
)

// exchange is one HTTP exchange as the client's transport saw it.
type exchange struct {
	method     string
	status     int
	authz      string // the Authorization scheme sent
	proof      bool   // a DPoP header was sent
	useNonce   bool   // the answer was 401 use_dpop_nonce with a DPoP-Nonce
	challenges []string
}

// wire records every exchange below the dpopclient transport: the
// requests as sent (after the proof was added) and the answers, including
// the use_dpop_nonce 401s the transport retries and the SDK never sees.
type wire struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	e := exchange{method: r.Method, authz: scheme, proof: len(r.Header.Values("DPoP")) == 1}
	resp, err := w.base.RoundTrip(r)
	if err == nil {
		e.status = resp.StatusCode
		e.challenges = resp.Header.Values("WWW-Authenticate")
		e.useNonce = resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("DPoP-Nonce") != "" &&
			slices.ContainsFunc(e.challenges, func(c string) bool { return strings.Contains(c, `error="use_dpop_nonce"`) })
	}
	w.mu.Lock()
	w.log = append(w.log, e)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) exchanges() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// TestGoSDKSessionWithDPoPBoundToken: the go-sdk MCP client, through the
// dpopclient transport, runs whole sessions through the gateway with a
// token oidc-provider bound to the client's key (oidc-provider requires
// its own nonce at the token endpoint, which dpopclient.ClientCredentials
// answers): initialize (server/discover at the SDK's latest version),
// tools/list, tools/call whoami, close — at the SDK's latest version
// (stateless) and at 2025-11-25 (a session: its GET stream and DELETE go
// through the gateway too), on a route that accepts DPoP beside Bearer and
// on one that requires DPoP and server nonces.
//
// Every request the MCP server got carried one Bearer JWT it accepted,
// never a DPoP header or the opaque token; whoami's verified claims hold
// cnf.jkt = the key's thumbprint; the gateway introspected once per
// session. With the gateway's nonce on, the first request was answered 401
// use_dpop_nonce and retried by the transport, and no other request was
// refused; without it, no request was refused.
func TestGoSDKSessionWithDPoPBoundToken(t *testing.T) {
	s := startStack(t, true)
	for _, route := range []struct {
		name, block string
		nonce       bool
	}{
		{"dpop", routeDPoP, false},
		{"dpop required nonce", "dpop {\n\trequired\n\tnonce\n}", true},
	} {
		for _, version := range []string{"", "2025-11-25"} {
			name := route.name + "/" + version
			if version == "" {
				name = route.name + "/latest"
			}
			t.Run(name, func(t *testing.T) {
				s.load(t, route.block)
				goSDKSession(t, s, version, route.nonce)
			})
		}
	}

	// The required route refuses Bearer, unbound tokens included, with a
	// DPoP challenge only, before asking the AS.
	t.Run("dpop required refuses Bearer", func(t *testing.T) {
		s.load(t, "dpop {\n\trequired\n\tnonce\n}")
		tok := s.as.ClientCredentialsToken(t, plainID, plainSecret, scopeTools, s.resource)
		before := s.metrics(t)
		resp, body := s.postInitialize(t, "Bearer "+tok)
		if ch := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || len(ch) != 1 || !strings.HasPrefix(ch[0], "DPoP ") {
			t.Errorf("an unbound Bearer token on a dpop-required route: %d %q %s; want 401 with a DPoP challenge only", resp.StatusCode, ch, body)
		}
		if d := s.metrics(t).introspections - before.introspections; d != 0 {
			t.Errorf("the AS was asked %v times about a Bearer token on a dpop-required route", d)
		}
	})
}

func goSDKSession(t *testing.T, s *stack, version string, nonce bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := newKey(t, "ES256")
	tok := s.dpopToken(t, key)

	base := &http.Transport{Proxy: nil, ResponseHeaderTimeout: 10 * time.Second}
	t.Cleanup(base.CloseIdleConnections)
	w := &wire{base: base}
	transport := &mcp.StreamableClientTransport{
		Endpoint:   s.resource,
		HTTPClient: &http.Client{Transport: &dpopclient.Transport{Base: w, Key: key, Token: tok}},
		MaxRetries: -1,
	}
	before := s.metrics(t)
	up := s.upstream.Count()

	client := mcp.NewClient(&mcp.Implementation{Name: "dpop-e2e", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connecting through the gateway: %v; exchanges %+v", err, w.exchanges())
	}
	stateful := version != ""
	if stateful && cs.ID() == "" {
		t.Errorf("asked for %s: no Mcp-Session-Id", version)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "whoami" }) {
		t.Errorf("tools/list has no whoami")
	}
	claims, err := gatewaytest.Whoami(ctx, cs)
	if err != nil {
		t.Fatalf("tools/call whoami: %v", err)
	}
	if got := jkt(claims); got != key.Thumbprint() {
		t.Errorf("whoami's verified cnf = %v, want jkt %s", claims["cnf"], key.Thumbprint())
	}
	if claims["iss"] != s.url || claims["client_id"] != agentID || !slices.Contains(gatewaytest.Audience(claims["aud"]), s.resource) {
		t.Errorf("whoami's verified iss %v, client_id %v, aud %v; want %s, %s, %s", claims["iss"], claims["client_id"], claims["aud"], s.url, agentID, s.resource)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}

	// What the MCP server got.
	reqs := s.upstream.Since(up)
	if len(reqs) < 3 {
		t.Fatalf("the MCP server got %d requests, want a whole session", len(reqs))
	}
	var first string
	for i, r := range reqs {
		c := forwardedJWT(t, r, tok)
		if jkt(c) != key.Thumbprint() {
			t.Errorf("upstream request %d (%s): JWT cnf %v", i, r.Method, c["cnf"])
		}
		if i == 0 {
			first = r.Header.Get("Authorization")
		} else if r.Header.Get("Authorization") != first {
			t.Errorf("upstream request %d (%s) carried another JWT: the session was not served from one cache entry", i, r.Method)
		}
	}
	if stateful && !slices.ContainsFunc(reqs, func(r gatewaytest.Request) bool { return r.Method == http.MethodDelete && r.Status/100 == 2 }) {
		t.Errorf("the session's DELETE did not reach the MCP server")
	}
	after := s.metrics(t)
	if d := after.introspections - before.introspections; d != 1 {
		t.Errorf("introspections for the session: +%v, want +1", d)
	}

	// What the client's transport sent and got.
	ex := w.exchanges()
	methods := map[string]bool{}
	nonceRetries := 0
	for i, e := range ex {
		methods[e.method] = true
		if e.authz != "DPoP" || !e.proof {
			t.Errorf("exchange %d (%s): Authorization %q, proof %v; want DPoP with a proof", i, e.method, e.authz, e.proof)
		}
		switch {
		case e.useNonce:
			nonceRetries++
		case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden:
			t.Errorf("exchange %d (%s): %d %q", i, e.method, e.status, e.challenges)
		}
	}
	switch {
	case nonce && (nonceRetries < 1 || !ex[0].useNonce || ex[1].status/100 != 2):
		t.Errorf("with nonces: %d use_dpop_nonce answers, first exchanges %+v; want the first request answered use_dpop_nonce and its retry to pass", nonceRetries, ex[:min(2, len(ex))])
	case !nonce && nonceRetries != 0:
		t.Errorf("without nonces: %d use_dpop_nonce answers", nonceRetries)
	}
	if stateful && !methods[http.MethodDelete] {
		t.Errorf("the client sent no DELETE (methods %v)", methods)
	}
	t.Logf("%d exchanges (methods %v, %d use_dpop_nonce retries), %d reached the MCP server", len(ex), keys(methods), nonceRetries, len(reqs))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
