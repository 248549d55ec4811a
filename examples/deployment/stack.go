package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/exampleapi"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/democaddy"
	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// The deployment's clients, scopes and users at the demo authorization
// server.
const (
	gatewayClientID   = "gateway"    // the gateway's introspection client
	mcpServerClientID = "mcp-server" // the MCP server's own client, for token exchange
	agentClientID     = "agent"      // a headless agent (client credentials)

	mcpScope = "mcp:tools" // what MCP clients get for the MCP server
	apiScope = "api:read"  // what the MCP server gets for the API, by exchange

	// tokenLifetime keeps access tokens short-lived: the gateway caches an
	// introspection for at most max_ttl (5m), a revoked token lives that
	// long at most, and an exchanged token never outlives its subject.
	tokenLifetime = 10 * time.Minute
)

// demoUser is a person who can log in at the authorization server.
type demoUser struct {
	name, password string
	notes          []string // what the API holds for them
}

// demoUsers are printed at startup; the passwords are the demo's, public.
var demoUsers = []demoUser{
	{"alice", "alice-demo-password", []string{"Buy milk", "Book the dentist"}},
	{"bob", "bob-demo-password", []string{"Fix the roof"}},
}

// agentNotes is what the API holds for the headless agent.
var agentNotes = []string{"Nightly report is ready"}

// options configure the deployment.
type options struct {
	listen   string // the gateway's host:port
	asListen string // the authorization server's host:port ("…:0" picks one)
	once     bool   // run the walkthrough and exit
	verbose  bool   // Caddy's logs at INFO

	// metadataClient fetches Client ID Metadata Documents at the AS (tests
	// serve them over TLS with a test CA); nil is the AS's default.
	metadataClient *http.Client
}

// stack is the running deployment.
type stack struct {
	as        *demoas.Server
	origin    string // the gateway: http://host:port
	mcpURL    string // origin + "/mcp", the MCP server's resource
	apiURL    string // origin + "/api", the API's resource
	apiMeURL  string // the API endpoint the MCP server calls
	mcpSeen   *recorder
	apiSeen   *recorder
	mcpOut    *recorder // what the MCP server sent through the gateway
	mcpDirect string    // the MCP server's own address, behind the gateway
	apiDirect string    // the API's own address, behind the gateway

	agentSecret     string
	mcpServerSecret string

	servers []*http.Server
	cancel  context.CancelFunc
	caddy   bool
}

// startStack starts the authorization server, the API, the MCP server and
// the gateway. On error, what was started is stopped again.
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
	s.origin = origin
	s.mcpURL, s.apiURL, s.apiMeURL = s.origin+"/mcp", s.origin+"/api", s.origin+"/api/me"

	gatewaySecret, err := democaddy.RandomSecret()
	if err != nil {
		return nil, err
	}
	if s.agentSecret, err = democaddy.RandomSecret(); err != nil {
		return nil, err
	}
	if s.mcpServerSecret, err = democaddy.RandomSecret(); err != nil {
		return nil, err
	}
	if err := s.startAS(opts, gatewaySecret); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.startAPI(ctx); err != nil {
		return nil, err
	}
	if err := s.startMCPServer(ctx); err != nil {
		return nil, err
	}
	if err := s.startGateway(opts, host, port, gatewaySecret); err != nil {
		return nil, err
	}
	return s, nil
}

// startAS starts the demo authorization server: the users, the two
// resources with their scopes, the exchange the MCP server may make, and
// the confidential clients.
func (s *stack) startAS(opts options, gatewaySecret string) error {
	users := make([]demoas.User, len(demoUsers))
	for i, u := range demoUsers {
		users[i] = demoas.User{Username: u.name, Password: u.password}
	}
	as, err := demoas.Start(demoas.Config{
		Addr:          opts.asListen,
		TokenLifetime: tokenLifetime,
		Users:         users,
		Resources: []demoas.Resource{
			{URL: s.mcpURL, Name: "Example MCP server", Scopes: []string{mcpScope}},
			{URL: s.apiURL, Name: "Example API", Scopes: []string{apiScope}},
		},
		Exchanges: []demoas.Exchange{{
			Client: mcpServerClientID, From: s.mcpURL, To: s.apiURL,
			Scopes: map[string][]string{mcpScope: {apiScope}},
		}},
		Clients: []demoas.Client{
			{ID: gatewayClientID, Secret: gatewaySecret},
			{ID: mcpServerClientID, Secret: s.mcpServerSecret},
			{ID: agentClientID, Secret: s.agentSecret, Scopes: []string{mcpScope}, Resources: []string{s.mcpURL}},
		},
		MetadataClient: opts.metadataClient,
	})
	if err != nil {
		if democaddy.IsAddrInUse(err) {
			return fmt.Errorf("start the authorization server: %s is in use; pick another address with -as-listen: %w", opts.asListen, err)
		}
		return fmt.Errorf("start the authorization server: %w", err)
	}
	s.as = as
	return nil
}

// startAPI starts the API on a free loopback port: it trusts the demo AS's
// JWTs for its own resource only.
func (s *stack) startAPI(ctx context.Context) error {
	notes := map[string][]string{agentClientID: agentNotes}
	for _, u := range demoUsers {
		notes[u.name] = u.notes
	}
	h, err := exampleapi.New(ctx, exampleapi.Config{
		JWKSURL: s.as.URL + demoas.JWKSPath, Issuer: s.as.Issuer, Resource: s.apiURL,
		Scope: apiScope, Prefix: "/api", Notes: notes,
	})
	if err != nil {
		return fmt.Errorf("start the API: %w", err)
	}
	s.apiSeen = newRecorder(h)
	s.apiDirect, err = s.serve(s.apiSeen)
	return err
}

// startMCPServer starts the MCP server on a free loopback port: stateless,
// trusting the demo AS's JWTs for the MCP resource, with the my_data tool
// that exchanges them for API tokens and calls the API through the gateway.
func (s *stack) startMCPServer(ctx context.Context) error {
	s.mcpOut = newRecorder(nil)
	h, err := mcpserver.New(ctx, mcpserver.Config{
		JWKSURL: s.as.URL + demoas.JWKSPath, Issuer: s.as.Issuer, Resource: s.mcpURL, Stateless: true,
		RequiredScopes: []string{mcpScope},
		API: &mcpserver.APIConfig{
			URL: s.apiMeURL, Resource: s.apiURL, TokenURL: s.as.URL + demoas.TokenPath,
			ClientID: mcpServerClientID, ClientSecret: s.mcpServerSecret, Scope: apiScope,
			HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: s.mcpOut.transport(http.DefaultTransport)},
		},
	})
	if err != nil {
		return fmt.Errorf("start the MCP server: %w", err)
	}
	s.mcpSeen = newRecorder(h)
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.mcpSeen)
	s.mcpDirect, err = s.serve(mux)
	return err
}

// serve serves h on a free loopback port and returns its host:port.
func (s *stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// startGateway runs Caddy with the deployment's Caddyfile.
func (s *stack) startGateway(opts options, host, port, gatewaySecret string) error {
	path, err := locateCaddyfile()
	if err != nil {
		return err
	}
	// {$NAME} is read when the Caddyfile is adapted, {env.NAME} when the
	// module is provisioned, so the secret never enters the JSON config.
	env := map[string]string{
		"DEPLOYMENT_LISTEN":         "http://:" + port,
		"DEPLOYMENT_ORIGIN":         s.origin,
		"DEPLOYMENT_AS":             s.as.URL,
		"DEPLOYMENT_GATEWAY_SECRET": gatewaySecret,
		"DEPLOYMENT_MCP_UPSTREAM":   s.mcpDirect,
		"DEPLOYMENT_API_UPSTREAM":   s.apiDirect,
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
	}
	cfg, err := democaddy.Adapt(path, host, opts.verbose)
	if err != nil {
		return err
	}
	if err := caddy.Load(cfg, true); err != nil {
		if democaddy.IsAddrInUse(err) {
			return fmt.Errorf("start Caddy: %s is in use; pick another address with -listen: %w", opts.listen, err)
		}
		return fmt.Errorf("start Caddy: %w", err)
	}
	s.caddy = true
	return nil
}

// locateCaddyfile finds examples/deployment/Caddyfile from the working
// directory (examples/ or the repository root) or this source file.
func locateCaddyfile() (string, error) {
	candidates := []string{filepath.Join("deployment", "Caddyfile"), filepath.Join("examples", "deployment", "Caddyfile")}
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "Caddyfile"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return filepath.Abs(c)
		}
	}
	return "", errors.New("cannot find examples/deployment/Caddyfile: run from the examples directory")
}

// close stops everything startStack started.
func (s *stack) close() {
	if s.caddy {
		_ = caddy.Stop()
		s.caddy = false
	}
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.as != nil {
		_ = s.as.Close()
	}
}
