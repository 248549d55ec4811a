package main

import (
	"fmt"
	"io"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

// printBanner prints where everything runs, the demo users, and the lines
// to paste into real MCP clients.
func (s *stack) printBanner(out io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	p("The example deployment is running (Ctrl-C to stop).")
	p("")
	p("  MCP server (through the gateway)   %s", s.mcpURL)
	p("  API (through the gateway)          %s", s.apiMeURL)
	p("  authorization server               %s", s.as.URL)
	p("    login and consent page           %s%s (MCP clients open it for you)", s.as.URL, demoas.AuthorizationPath)
	p("")
	p("Demo users (log in on the authorization server's page):")
	for _, u := range demoUsers {
		p("  %-6s password %s", u.name, u.password)
	}
	p("")
	p("Connect an MCP client; it discovers the authorization server from the gateway's 401,")
	p("registers itself (dynamic registration or a Client ID Metadata Document) and opens the login page:")
	p("  Claude Code     claude mcp add --transport http phantom-demo %s", s.mcpURL)
	p("                  then /mcp in Claude Code, pick phantom-demo, Authenticate")
	p("  MCP Inspector   npx @modelcontextprotocol/inspector --web --transport http --server-url %s", s.mcpURL)
	p("                  open the URL it prints, switch the server on; then Tools, my_data, Execute Tool")
	p("  Then call the tool my_data: the MCP server exchanges its JWT for an API token and")
	p("  returns the logged-in user's notes from the API; whoami shows the claims of the JWT the MCP server verified.")
	p("")
	p("A headless agent (client credentials, RFC 8707 resource):")
	p("  curl -s -u %s:%s -d grant_type=client_credentials -d scope=%s -d resource=%s %s%s",
		agentClientID, s.agentSecret, mcpScope, s.mcpURL, s.as.URL, demoas.TokenPath)
	p("")
	p("What to look at: the gateway's 401 on %s names %s/.well-known/oauth-protected-resource/mcp;", s.mcpURL, s.origin)
	p("a token for the MCP server is refused on %s and the API's token on %s (each route checks its audience).", s.apiMeURL, s.mcpURL)
	p("`go run ./deployment -once` runs all of this as a scripted walkthrough.")
}
