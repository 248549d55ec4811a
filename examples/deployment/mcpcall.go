package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// myDataCall is what one MCP session with a token got.
type myDataCall struct {
	tools []string
	data  map[string]any // my_data's structured result
}

// callMyData connects the go-sdk client to the MCP URL with token, lists the
// tools and calls my_data.
func (s *stack) callMyData(ctx context.Context, token string) (myDataCall, error) {
	var out myDataCall
	client := mcp.NewClient(&mcp.Implementation{Name: "deployment-walkthrough", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   s.mcpURL,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: bearerTransport{token: token, next: http.DefaultTransport}},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		return out, fmt.Errorf("connect: %w", err)
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		return out, fmt.Errorf("tools/list: %w", err)
	}
	for _, t := range tools.Tools {
		out.tools = append(out.tools, t.Name)
	}
	slices.Sort(out.tools)
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "my_data"})
	if err != nil {
		return out, fmt.Errorf("tools/call my_data: %w", err)
	}
	if res.IsError {
		text := ""
		if len(res.Content) > 0 {
			if t, ok := res.Content[0].(*mcp.TextContent); ok {
				text = t.Text
			}
		}
		return out, fmt.Errorf("tools/call my_data: tool error %q", text)
	}
	data, ok := res.StructuredContent.(map[string]any)
	if !ok {
		return out, errors.New("tools/call my_data: no structured result")
	}
	out.data = data
	return out, nil
}

// bearerTransport adds "Authorization: Bearer <token>" to every request.
type bearerTransport struct {
	token string
	next  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
