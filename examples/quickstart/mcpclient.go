package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// countdownN is the number of progress notifications the demo asks for.
const countdownN = 3

// bearerTransport adds "Authorization: Bearer <token>" to every request and
// logs each request's HTTP method, JSON-RPC method and status.
type bearerTransport struct {
	token string
	next  http.RoundTripper

	mu  sync.Mutex
	log []string
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	entry := r.Method
	if m := rpcMethod(r); m != "" {
		entry += " " + m
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		entry += " error"
	} else {
		entry += fmt.Sprintf(" %d", resp.StatusCode)
	}
	t.mu.Lock()
	t.log = append(t.log, entry)
	t.mu.Unlock()
	return resp, err
}

// rpcMethod returns the JSON-RPC method of a request body, or "".
func rpcMethod(r *http.Request) string {
	if r.GetBody == nil {
		return ""
	}
	body, err := r.GetBody()
	if err != nil {
		return ""
	}
	defer body.Close()
	var msg struct {
		Method string `json:"method"`
	}
	if json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&msg) != nil {
		return ""
	}
	return msg.Method
}

func (t *bearerTransport) requests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.log)
}

// mcpSession runs an MCP session through the gateway with the go-sdk client
// and the opaque token: initialize (server/discover at 2026-07-28),
// tools/list, tools/call countdown (SSE), tools/call whoami, close.
func (s *stack) mcpSession(ctx context.Context, out io.Writer, res *demoResult, tok string) {
	var progress progressLog
	client := mcp.NewClient(&mcp.Implementation{Name: "quickstart-agent", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: progress.add,
	})
	transport := &bearerTransport{token: tok, next: &http.Transport{Proxy: nil}}
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   s.resource,
		HTTPClient: &http.Client{Transport: transport, Timeout: 30 * time.Second},
		// No standalone GET stream: this demo needs no server-initiated
		// messages, and without it the request count is deterministic.
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		fmt.Fprintf(out, "  initialize           error: %v\n", err)
		res.fail("MCP initialize through the gateway: %v", err)
		return
	}
	init := session.InitializeResult()
	fmt.Fprintf(out, "  initialize           %s %s, protocol %s\n", init.ServerInfo.Name, init.ServerInfo.Version, init.ProtocolVersion)

	s.listTools(ctx, out, res, session)

	s.countdown(ctx, out, res, session, &progress)

	s.whoami(ctx, out, res, session)

	sessionID := session.ID()
	if err := session.Close(); err != nil {
		fmt.Fprintf(out, "  close                error: %v\n", err)
		res.fail("closing the MCP session: %v", err)
	} else if sessionID != "" {
		fmt.Fprintf(out, "  close                session ended (DELETE /mcp)\n")
	} else {
		// 2026-07-28 has no sessions: every request stands alone.
		fmt.Fprintf(out, "  close                nothing to end: protocol %s has no sessions\n", init.ProtocolVersion)
	}
	res.mcpRequests = transport.requests()
	fmt.Fprintf(out, "  HTTP requests the go-sdk client sent, each with the opaque token:\n")
	for _, r := range res.mcpRequests {
		fmt.Fprintf(out, "    %s\n", r)
	}
}

// progressLog records progress notifications and when they arrived.
type progressLog struct {
	mu       sync.Mutex
	messages []string
	first    time.Time
}

func (p *progressLog) add(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.messages) == 0 {
		p.first = time.Now()
	}
	p.messages = append(p.messages, req.Params.Message)
}

// countdown calls the countdown tool and checks that its progress
// notifications arrived while the call was running: the gateway streamed the
// SSE response instead of buffering it.
func (s *stack) countdown(ctx context.Context, out io.Writer, res *demoResult, session *mcp.ClientSession, progress *progressLog) {
	params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": countdownN}}
	params.SetProgressToken("quickstart")
	result, err := session.CallTool(ctx, params)
	done := time.Now()
	if err != nil || result.IsError {
		fmt.Fprintf(out, "  tools/call countdown error: %v %s\n", err, textOf(result))
		res.fail("tools/call countdown: %v %s", err, textOf(result))
		return
	}
	progress.mu.Lock()
	messages, lead := slices.Clone(progress.messages), done.Sub(progress.first)
	progress.mu.Unlock()
	if len(messages) == 0 {
		lead = 0
	}
	fmt.Fprintf(out, "  tools/call countdown progress %s, the first %v before the result %q (SSE, streamed)\n",
		strings.Join(messages, ", "), lead.Round(10*time.Millisecond), textOf(result))
	if len(messages) != countdownN {
		res.fail("tools/call countdown: %d progress notifications, want %d", len(messages), countdownN)
	} else if lead < mcpserver.ProgressInterval {
		res.fail("tools/call countdown: the progress notifications arrived with the result, not before it (buffered)")
	}
}

// listTools lists the tools and expects whoami among them.
func (s *stack) listTools(ctx context.Context, out io.Writer, res *demoResult, session *mcp.ClientSession) {
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		fmt.Fprintf(out, "  tools/list           error: %v\n", err)
		res.fail("tools/list: %v", err)
		return
	}
	var names []string
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	fmt.Fprintf(out, "  tools/list           %s\n", strings.Join(names, ", "))
	if !slices.Contains(names, "whoami") {
		res.fail("tools/list: no whoami tool")
	}
}

// whoami calls the whoami tool and prints the claims the MCP server verified.
func (s *stack) whoami(ctx context.Context, out io.Writer, res *demoResult, session *mcp.ClientSession) {
	result, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || result.IsError {
		fmt.Fprintf(out, "  tools/call whoami    error: %v %s\n", err, textOf(result))
		res.fail("tools/call whoami: %v %s", err, textOf(result))
		return
	}
	claims, _ := result.StructuredContent.(map[string]any)
	res.claims = claims
	pretty, err := json.MarshalIndent(claims, "    ", "  ")
	if err != nil {
		pretty = []byte(fmt.Sprint(claims))
	}
	fmt.Fprintf(out, "  tools/call whoami    the MCP server verified the JWT it received; its claims:\n    %s\n", pretty)

	aud, _ := claims["aud"].([]any)
	switch {
	case claims["client_id"] != agentClientID || claims["sub"] != agentClientID:
		res.fail("whoami: client_id %v, sub %v; want %s", claims["client_id"], claims["sub"], agentClientID)
	case claims["iss"] != s.as.Issuer:
		res.fail("whoami: iss %v, want %s", claims["iss"], s.as.Issuer)
	case claims["scope"] != agentScope:
		res.fail("whoami: scope %v, want %s", claims["scope"], agentScope)
	case !slices.Contains(aud, any(s.resource)):
		res.fail("whoami: aud %v lacks %s", claims["aud"], s.resource)
	}
}

// textOf returns the text content of a tool result.
func textOf(r *mcp.CallToolResult) string {
	if r == nil {
		return ""
	}
	var parts []string
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, " ")
}
