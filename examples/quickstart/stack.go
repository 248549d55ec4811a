package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/democaddy"
	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// Client IDs registered at the demo authorization server.
const (
	gatewayClientID = "gateway" // the gateway's own introspection client
	agentClientID   = "agent"   // the MCP client
	agentScope      = "mcp:tools"
)

// stack is the running demo: authorization server, MCP server and gateway.
type stack struct {
	as           *demoas.Server
	upstream     *recorder // the MCP server, recording what reaches it
	upstreamAddr string    // host:port
	upstreamSrv  *http.Server
	stopUpstream context.CancelFunc
	gatewayURL   string // http://host:port
	resource     string // the MCP URL clients use: gatewayURL + "/mcp"
	caddyfile    string // the Caddyfile the gateway runs
	agentSecret  string
	caddyRunning bool
}

// startStack starts the demo authorization server, the MCP server and Caddy,
// in that order. On error, what was started is stopped again.
func startStack(opts options) (_ *stack, err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	host, port, origin, err := democaddy.ParseListen(opts.listen)
	if err != nil {
		return nil, err
	}
	s.gatewayURL = origin
	s.resource = s.gatewayURL + "/mcp"

	if s.caddyfile, err = locateCaddyfile(opts.config); err != nil {
		return nil, err
	}

	gatewaySecret, err := democaddy.RandomSecret()
	if err != nil {
		return nil, err
	}
	if s.agentSecret, err = democaddy.RandomSecret(); err != nil {
		return nil, err
	}
	s.as, err = demoas.Start(demoas.Config{Clients: []demoas.Client{
		{ID: gatewayClientID, Secret: gatewaySecret},
		{ID: agentClientID, Secret: s.agentSecret, Scopes: []string{agentScope, mcpserver.WriteScope}, Resources: []string{s.resource}},
	}})
	if err != nil {
		return nil, fmt.Errorf("start demo authorization server: %w", err)
	}

	if err := s.startUpstream(); err != nil {
		return nil, err
	}

	// The Caddyfile reads these: {$NAME} when it is adapted, {env.NAME} when
	// the module is provisioned (so the secret never enters the JSON config).
	// "http://:PORT" is plain HTTP for any Host; the listener itself is bound
	// to the -listen host when the config is patched.
	env := map[string]string{
		"PHANTOM_LISTEN":            "http://:" + port,
		"PHANTOM_INTROSPECTION_URL": s.as.URL + demoas.IntrospectionPath,
		"PHANTOM_JWKS_URI":          s.as.URL + demoas.JWKSPath,
		"PHANTOM_ISSUER":            s.as.Issuer,
		"PHANTOM_CLIENT_ID":         gatewayClientID,
		"PHANTOM_CLIENT_SECRET":     gatewaySecret,
		"PHANTOM_RESOURCE":          s.resource,
		"PHANTOM_UPSTREAM":          s.upstreamAddr,
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}

	cfg, err := democaddy.Adapt(s.caddyfile, host, opts.verbose)
	if err != nil {
		return nil, err
	}
	if err := caddy.Load(cfg, true); err != nil {
		if democaddy.IsAddrInUse(err) {
			return nil, fmt.Errorf("start Caddy: %s is in use; pick another address with -listen: %w", opts.listen, err)
		}
		return nil, fmt.Errorf("start Caddy: %w", err)
	}
	s.caddyRunning = true
	return s, nil
}

// startUpstream starts the example MCP server on a free loopback port. It
// trusts JWTs signed by the demo AS, issued by it, for the gateway's MCP URL.
func (s *stack) startUpstream() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopUpstream = cancel
	h, err := mcpserver.New(ctx, mcpserver.Config{
		JWKSURL:  s.as.URL + demoas.JWKSPath,
		Issuer:   s.as.Issuer,
		Resource: s.resource,
	})
	if err != nil {
		return fmt.Errorf("start MCP server: %w", err)
	}
	s.upstream = newRecorder(h)
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.upstream)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start MCP server: %w", err)
	}
	s.upstreamAddr = ln.Addr().String()
	s.upstreamSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.upstreamSrv.Serve(ln) }()
	return nil
}

// close stops everything startStack started.
func (s *stack) close() {
	if s.caddyRunning {
		_ = caddy.Stop()
		s.caddyRunning = false
	}
	if s.upstreamSrv != nil {
		_ = s.upstreamSrv.Close()
	}
	if s.stopUpstream != nil {
		s.stopUpstream()
	}
	if s.as != nil {
		_ = s.as.Close()
	}
}
