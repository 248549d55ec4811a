package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxAPIResponse bounds what the my_data tool reads from the API.
const maxAPIResponse = 1 << 20

// addAPITool registers my_data, which returns the caller's data from the
// API behind the gateway.
func addAPITool(s *mcp.Server, e *exchanger) {
	mcp.AddTool(s, &mcp.Tool{
		Name: "my_data",
		Description: "Returns your data from the example API. The server exchanges the token of this call " +
			"for a token for the API (RFC 8693) and calls the API through the gateway.",
	}, e.myData)
}

// myData exchanges the JWT of the call and GETs the API with the result.
func (e *exchanger) myData(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, map[string]any, error) {
	info := req.Extra.TokenInfo
	subject := rawToken(info)
	if subject == "" {
		return nil, nil, errors.New("no verified token on this request")
	}
	tok, err := e.token(ctx, subject, info.Expiration)
	if err != nil {
		return nil, nil, err
	}
	apiReq, err := http.NewRequestWithContext(ctx, http.MethodGet, e.cfg.URL, nil)
	if err != nil {
		return nil, nil, err
	}
	apiReq.Header.Set("Authorization", "Bearer "+tok)
	apiReq.Header.Set("Accept", "application/json")
	resp, err := e.client.Do(apiReq)
	if err != nil {
		return nil, nil, fmt.Errorf("calling the API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("the API answered %d (%s)", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	var data map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAPIResponse)).Decode(&data); err != nil {
		return nil, nil, fmt.Errorf("the API's answer is not a JSON object: %w", err)
	}
	return nil, data, nil
}
