// Command mcp-server runs the example MCP server (package mcpserver) at /mcp:
// it validates the JWT the phantom token gateway forwards, and offers the
// tools whoami and countdown.
//
//	cd examples && go run ./mcp-server -listen 127.0.0.1:9000 \
//		-jwks http://127.0.0.1:9001/.well-known/jwks.json \
//		-issuer http://127.0.0.1:9001 \
//		-resource http://127.0.0.1:8080/mcp
//
// -resource is the MCP URL clients use (the gateway's), not this server's own
// address. Behind a reverse proxy, present this server's address as Host
// (Caddy: header_up Host {upstream_hostport}); see the mcpserver package
// documentation on DNS-rebinding protection.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, nil)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcp-server: %v\n", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx is done, and reports the listening
// address to ready (when set) once it accepts connections.
func run(ctx context.Context, args []string, out io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("mcp-server", flag.ContinueOnError)
	fs.SetOutput(out)
	listen := fs.String("listen", "127.0.0.1:9000", "`address` to listen on")
	var cfg mcpserver.Config
	fs.StringVar(&cfg.JWKSURL, "jwks", "", "`URL` of the JWKS that signs the forwarded JWTs (required)")
	fs.StringVar(&cfg.Issuer, "issuer", "", "expected `iss` of the JWTs (required)")
	fs.StringVar(&cfg.Resource, "resource", "", "this server's canonical `URL` as clients address it; JWTs must carry it in aud (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	handler, err := mcpserver.New(ctx, cfg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", handler)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "MCP server on http://%s/mcp (resource %s, issuer %s)\n", ln.Addr(), cfg.Resource, cfg.Issuer)
	if ready != nil {
		ready(ln.Addr().String())
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Open SSE streams keep Shutdown waiting; after a grace period, close.
	shutdownCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); errors.Is(err, context.DeadlineExceeded) {
		return srv.Close()
	} else if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
