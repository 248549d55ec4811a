// Command deployment runs the example deployment of the phantom token
// pattern in one process: the demo authorization server with a login page
// (authorization code + PKCE, Client ID Metadata Documents, dynamic client
// registration, token exchange), the gateway (Caddy with phantom_token, the
// Caddyfile in this folder), a stateless MCP server, and the API the MCP
// server calls.
//
//	cd examples && go run ./deployment          # print how to connect a client, serve until Ctrl-C
//	cd examples && go run ./deployment -once    # the scripted walkthrough; exit 0 when every check passed
//
// Token flow: an MCP client holds an opaque token for the MCP URL; the
// gateway forwards a JWT with the MCP server's audience; the MCP server
// exchanges that JWT (RFC 8693) for an opaque token for the API and calls the
// API through the gateway, which forwards a JWT with the API's audience.
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

	// Caddy's standard modules, the Caddyfile adapter, and the module.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)

func main() {
	var opts options
	flag.StringVar(&opts.listen, "listen", "127.0.0.1:8080", "`address` the gateway listens on")
	flag.StringVar(&opts.asListen, "as-listen", "127.0.0.1:8081", "`address` the authorization server listens on")
	flag.BoolVar(&opts.once, "once", false, "run the walkthrough and exit; the exit status is non-zero if a check failed")
	flag.BoolVar(&opts.verbose, "v", false, "show Caddy's logs")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, opts, os.Stdout, nil)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "deployment: %v\n", err)
		os.Exit(1)
	}
}

// errChecksFailed is returned when the walkthrough ran but an expectation
// did not hold.
var errChecksFailed = errors.New("some checks failed")

// run starts the deployment. With opts.once it runs the walkthrough and
// returns; otherwise it prints how to connect and serves until ctx is done.
// ready, if set, is called with the running stack, and the walkthrough's
// result with -once, before run returns (tests look at them).
func run(ctx context.Context, opts options, out io.Writer, ready func(*stack, *walkResult)) error {
	s, err := startStack(opts)
	if err != nil {
		return err
	}
	defer s.close()

	if !opts.once {
		s.printBanner(out)
		if ready != nil {
			ready(s, nil)
		}
		<-ctx.Done()
		fmt.Fprintln(out, "stopping")
		return nil
	}
	res := s.walkthrough(ctx, out)
	if ready != nil {
		ready(s, res)
	}
	if len(res.failures) > 0 {
		return errChecksFailed
	}
	return nil
}
