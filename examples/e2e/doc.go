// Package e2e holds end-to-end tests of the phantom token gateway with real
// MCP clients: a real Caddy (in-process, loaded from a Caddyfile) running the
// phantom_token handler, the demo authorization server (demoas) and the
// example MCP server (mcpserver), all on 127.0.0.1.
//
// The clients are the go-sdk client (github.com/modelcontextprotocol/go-sdk)
// and the npm @modelcontextprotocol/sdk client, run as node scripts from the
// node folder (installed with `npm ci --prefix e2e/node`; the tests run that
// themselves when node_modules is missing, except under CI=true, where a
// missing install is a failure).
//
// The package has only tests:
//
//	cd examples && go test -race -count=1 ./e2e/
package e2e
