package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Countdown limits.
const (
	defaultCountdown = 3
	maxCountdown     = 20
	// ProgressInterval is the pause between two countdown progress
	// notifications, and between the last one and the result.
	ProgressInterval = 100 * time.Millisecond
)

// addTools registers the example tools.
func addTools(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{
		Name:        "whoami",
		Description: "Returns the claims of the JWT this server verified for the call.",
	}, whoami)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "save_note",
		Description: "Stores a note (in memory) and returns how many are stored. Needs the " + WriteScope + " scope.",
	}, saveNote)
	mcp.AddTool(s, &mcp.Tool{
		Name: "countdown",
		Description: fmt.Sprintf("Sends n progress notifications %v apart (when the call has a progress token), then returns \"done\".",
			ProgressInterval),
	}, countdown)
}

// whoami returns the verified claims: as structured content, and as their
// JSON text (the SDK fills Content from the output).
func whoami(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, map[string]any, error) {
	claims := Claims(req.Extra.TokenInfo)
	if claims == nil {
		return nil, nil, errors.New("no verified token on this request")
	}
	return nil, claims, nil
}

// WriteScope is the scope the save_note tool needs on top of what every
// call needs: the gateway checks it per operation (mcp_operation), and the
// tool checks it again on the verified JWT.
const WriteScope = "mcp:write"

// AdminScope implies WriteScope. MCP requires servers to account for scope
// hierarchies, and the JWT carries the scopes the AS granted, not the ones
// the gateway derived: a gateway configured with
// `scope_implies mcp:admin mcp:write` lets an mcp:admin token through to
// save_note, so the tool must accept it too.
const AdminScope = "mcp:admin"

// writeScopes are the scopes that grant WriteScope.
var writeScopes = []string{WriteScope, AdminScope}

// SaveNoteArgs are the arguments of the save_note tool.
type SaveNoteArgs struct {
	Text string `json:"text" jsonschema:"the note"`
}

// notes is what save_note stored; the example keeps them in memory only.
var notes struct {
	sync.Mutex
	n int
}

// saveNote stores a note when the verified token grants WriteScope (or
// AdminScope, which implies it).
func saveNote(_ context.Context, req *mcp.CallToolRequest, args SaveNoteArgs) (*mcp.CallToolResult, any, error) {
	if info := req.Extra.TokenInfo; info == nil || !slices.ContainsFunc(info.Scopes, func(s string) bool { return slices.Contains(writeScopes, s) }) {
		return nil, nil, fmt.Errorf("save_note needs the %s scope", WriteScope)
	}
	if args.Text == "" {
		return nil, nil, errors.New("text is required")
	}
	notes.Lock()
	notes.n++
	n := notes.n
	notes.Unlock()
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("saved (%d notes)", n)}}}, nil, nil
}

// CountdownArgs are the arguments of the countdown tool.
type CountdownArgs struct {
	N int `json:"n,omitempty" jsonschema:"number of progress notifications, 1 to 20; default 3"`
}

// countdown sends N progress notifications ProgressInterval apart on the
// request's stream, then returns "done" after one more interval.
func countdown(ctx context.Context, req *mcp.CallToolRequest, args CountdownArgs) (*mcp.CallToolResult, any, error) {
	n := args.N
	if n == 0 {
		n = defaultCountdown
	}
	if n < 1 || n > maxCountdown {
		return nil, nil, fmt.Errorf("n must be between 1 and %d", maxCountdown)
	}
	progressToken := req.Params.GetProgressToken()
	for i := range n {
		if i > 0 {
			if err := sleep(ctx, ProgressInterval); err != nil {
				return nil, nil, err
			}
		}
		if progressToken == nil {
			continue
		}
		err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: progressToken,
			Progress:      float64(i + 1),
			Total:         float64(n),
			Message:       strconv.Itoa(n - i),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("send progress: %w", err)
		}
	}
	if err := sleep(ctx, ProgressInterval); err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
