// Command quickstart runs the phantom token pattern end to end, in one
// process: a demo authorization server (ory/fosite), the example MCP server
// (package mcpserver), and Caddy with the phantom_token module configured by
// ../Caddyfile.example.
//
//	cd examples && go run ./quickstart          # demo, then keep serving until Ctrl-C
//	cd examples && go run ./quickstart -once    # demo, exit 0 when every check passed
//
// The demo does what an MCP client does: its first request gets a 401 whose
// challenge points to the gateway's protected resource metadata (RFC 9728),
// which names the authorization server; it gets an opaque token for the MCP
// URL there (client credentials, RFC 8707 resource), then runs an MCP session
// through the gateway with the go-sdk client. It shows the claims the MCP
// server verified (tools/call whoami), that the MCP server received JWTs and
// never the opaque token, and that the authorization server was asked once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// Caddy's standard modules, the Caddyfile adapter, and the module under demo.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)

// options are the command-line flags.
type options struct {
	listen  string // gateway address, host:port
	config  string // Caddyfile path; "" locates Caddyfile.example
	once    bool   // exit after the demo
	verbose bool   // show Caddy's logs

	// ready, when set, is called after the demo and before the stack stops
	// (tests use it to inspect the stack).
	ready func(*stack, *demoResult)
}

func main() {
	var opts options
	flag.StringVar(&opts.listen, "listen", "127.0.0.1:8080", "`address` the gateway listens on")
	flag.StringVar(&opts.config, "config", "", "Caddyfile `path` (default: Caddyfile.example at the repository root)")
	flag.BoolVar(&opts.once, "once", false, "run the demo and exit; the exit status is non-zero if a check failed")
	flag.BoolVar(&opts.verbose, "v", false, "show Caddy's logs")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, opts, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "quickstart: %v\n", err)
		os.Exit(1)
	}
}

// errChecksFailed is returned when the demo ran but an expectation did not hold.
var errChecksFailed = errors.New("some checks failed")

// run starts the stack, runs the demo, and unless opts.once keeps the gateway
// up until ctx is done.
func run(ctx context.Context, opts options, out io.Writer) error {
	s, err := startStack(opts)
	if err != nil {
		return err
	}
	defer s.close()

	res, err := s.demo(ctx, out)
	if err != nil {
		return err
	}
	if opts.ready != nil {
		opts.ready(s, res)
	}
	var result error
	if len(res.failures) > 0 {
		result = errChecksFailed
	}
	if opts.once {
		return result
	}

	fmt.Fprintf(out, "\nthe gateway keeps running; try it (Ctrl-C to stop):\n\n")
	fmt.Fprintf(out, "  # the protected resource metadata (no token needed)\n")
	fmt.Fprintf(out, "  curl -si %s%s\n\n", s.gatewayURL, metadataPath)
	fmt.Fprintf(out, "  # no token: 401, the challenge points to the metadata\n")
	fmt.Fprintf(out, "  curl -si -X POST %s\n\n", s.resource)
	fmt.Fprintf(out, "  # the agent's opaque token (shown on purpose): an MCP initialize; the gateway authorizes it from its cache (no new introspection)\n")
	fmt.Fprintf(out, "  curl -si -X POST -H \"Authorization: Bearer %s\" -H \"Content-Type: application/json\" -H \"Accept: application/json, text/event-stream\" -d '%s' %s\n\n",
		res.token, initializeBody, s.resource)
	<-ctx.Done()
	fmt.Fprintf(out, "stopping\n")
	return result
}
