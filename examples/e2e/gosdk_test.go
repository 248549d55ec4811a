package e2e

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
)

// goClient says how connectGoClient sets up the go-sdk client.
type goClient struct {
	options *mcp.ClientOptions // may be nil
	// version is the protocol version asked for; "" is the SDK's latest,
	// 2026-07-28, which has no sessions (the example MCP server serves it
	// statelessly).
	version string
	// wrap, if set, wraps the round tripper that adds the token.
	wrap func(http.RoundTripper) http.RoundTripper
}

// sessionVersion is the newest protocol version with sessions.
const sessionVersion = "2025-11-25"

// connectGoClient connects the go-sdk client through the gateway with an
// opaque bearer token.
func (s *stack) connectGoClient(t *testing.T, ctx context.Context, token string, c goClient) *mcp.ClientSession {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Bounds the wait for response headers, not the streams: the SDK opens
	// its standalone SSE stream inside Connect with a context of its own, so
	// a gateway that held back the headers would otherwise hang the test.
	base.ResponseHeaderTimeout = 10 * time.Second
	cs, err := gatewaytest.Connect(ctx, t, gatewaytest.ClientConfig{
		Endpoint:        s.resource,
		Token:           token,
		Name:            "phantom-token-e2e",
		Base:            base,
		Options:         c.options,
		Wrap:            c.wrap,
		ProtocolVersion: c.version,
	})
	if err != nil {
		t.Fatalf("connecting through the gateway: %v", err)
	}
	return cs
}

// progressLog records when each progress notification arrived.
type progressLog struct {
	mu       sync.Mutex
	arrivals []time.Time
	progress []float64
}

func (p *progressLog) handle(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arrivals = append(p.arrivals, time.Now())
	p.progress = append(p.progress, req.Params.Progress)
}

func (p *progressLog) snapshot() ([]time.Time, []float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.arrivals), slices.Clone(p.progress)
}

// TestGoSDKClientSessionThroughGateway runs a whole MCP session with the
// go-sdk client and an opaque token through Caddy: initialize (server/discover
// at 2026-07-28), tools/list, tools/call whoami, a streaming tool, and close;
// at the SDK's latest version (stateless) and at the newest version with
// sessions. The MCP server must see only the JWT, progress must stream, a
// session's DELETE must reach the MCP server, and the gateway must introspect
// once for all of it.
func TestGoSDKClientSessionThroughGateway(t *testing.T) {
	for _, version := range []string{"", sessionVersion} {
		name := version
		if name == "" {
			name = "latest"
		}
		t.Run(name, func(t *testing.T) { goSDKSessionThroughGateway(t, version) })
	}
}

func goSDKSessionThroughGateway(t *testing.T, version string) {
	stateful := version != ""
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opaque := s.agentToken(t)
	s.as.ResetIntrospectionCalls()
	progress := &progressLog{}
	cs := s.connectGoClient(t, ctx, opaque, goClient{
		options: &mcp.ClientOptions{ProgressNotificationHandler: progress.handle},
		version: version,
	})
	closed := false
	defer func() {
		if !closed {
			_ = cs.Close()
		}
	}()

	sessionID := cs.ID()
	t.Run("initialize negotiates the version", func(t *testing.T) {
		got := cs.InitializeResult()
		if got == nil || got.ServerInfo == nil {
			t.Fatalf("initialize result = %+v, want server info", got)
		}
		switch {
		case stateful && (got.ProtocolVersion != version || sessionID == ""):
			t.Fatalf("asked for %s: got version %s, session id %q; want that version and a session", version, got.ProtocolVersion, sessionID)
		case !stateful && (got.ProtocolVersion < "2026-07-28" || sessionID != ""):
			t.Fatalf("the SDK's latest version: got %s, session id %q; want 2026-07-28 or later, no session", got.ProtocolVersion, sessionID)
		}
	})

	t.Run("tools/list shows whoami and countdown", func(t *testing.T) {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		for _, want := range []string{"whoami", "countdown"} {
			if !slices.Contains(names, want) {
				t.Errorf("tools/list = %v, want it to contain %s", names, want)
			}
		}
	})

	t.Run("tools/call whoami returns the verified JWT claims", func(t *testing.T) {
		claims, err := gatewaytest.Whoami(ctx, cs)
		if err != nil {
			t.Fatalf("tools/call whoami: %v", err)
		}
		s.wantAgentClaims(t, claims)
	})

	t.Run("countdown progress arrives before the result", func(t *testing.T) {
		const n = 5 // the tool sends n notifications about 100 ms apart
		params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": n}}
		params.SetProgressToken("countdown-1")
		start := time.Now()
		res, err := cs.CallTool(ctx, params)
		returned := time.Now()
		if err != nil {
			t.Fatalf("tools/call countdown: %v", err)
		}
		if res.IsError {
			t.Fatalf("countdown: isError, content %v", res.Content)
		}
		arrivals, values := progress.snapshot()
		if len(arrivals) != n {
			t.Fatalf("got %d progress notifications before the result, want %d (values %v)", len(arrivals), n, values)
		}
		for i, at := range arrivals {
			if at.After(returned) {
				t.Errorf("progress %d arrived %v after the call returned", i, at.Sub(returned))
			}
		}
		// Streamed, not buffered: the first notification comes well before
		// the result, and the notifications are spread over the run.
		if lead := returned.Sub(arrivals[0]); lead < 200*time.Millisecond {
			t.Errorf("first progress arrived only %v before the result (call took %v): the stream looks buffered", lead, returned.Sub(start))
		}
		if spread := arrivals[n-1].Sub(arrivals[0]); spread < 200*time.Millisecond {
			t.Errorf("all %d progress notifications arrived within %v: the stream looks buffered", n, spread)
		}
		if !slices.IsSorted(values) || values[0] == values[n-1] {
			t.Errorf("progress values %v, want increasing", values)
		}
	})

	t.Run("close sends DELETE with the session id to the MCP server", func(t *testing.T) {
		closed = true
		if err := cs.Close(); err != nil {
			t.Fatalf("closing the session: %v", err)
		}
		if stateful {
			wantSessionDeleted(t, s.upstream.Requests(), sessionID)
		}
	})

	t.Run("the MCP server saw a JWT on every request, never the opaque token", func(t *testing.T) {
		wantUpstreamSawOnlyJWTs(t, s.upstream.Requests(), opaque)
	})

	t.Run("one introspection for the whole session", func(t *testing.T) {
		reqs := s.upstream.Requests()
		// With a session: initialize, initialized, list, 2 calls, DELETE
		// (and the SSE GET); without: discover, list, 2 calls.
		if want := map[bool]int{true: 6, false: 4}[stateful]; len(reqs) < want {
			t.Errorf("only %d requests reached the MCP server: %s", len(reqs), summary(reqs))
		}
		s.wantIntrospections(t, 1)
	})
}
