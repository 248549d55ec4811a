package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Config configures New.
type Config struct {
	// JWKSURL is the JWKS that signs the forwarded JWTs (the authorization
	// server's). Required; http(s).
	JWKSURL string
	// Issuer is the expected "iss" of the JWTs. Required.
	Issuer string
	// Resource is this server's canonical URL as clients address it (through
	// the gateway); a JWT's "aud" must contain it. Required.
	Resource string
	// RequiredScopes must all be in a JWT's "scope"; a JWT without one of
	// them is refused with 403 insufficient_scope. The gateway checks them
	// too; the server does not rely on it.
	RequiredScopes []string
	// HTTPClient fetches the JWKS; default a client with a 10s timeout.
	HTTPClient *http.Client
	// Realm is the realm of the server's Bearer challenges; default "mcp".
	Realm string
	// Stateless serves every protocol version without sessions, as
	// 2026-07-28 always is, so that any replica can answer any request.
	// Otherwise clients of older versions get sessions (Mcp-Session-Id).
	Stateless bool
	// API, when set, adds the my_data tool: it calls an OAuth-protected API
	// with a token exchanged (RFC 8693) for the JWT of the call.
	API *APIConfig
}

// serverName is the name the server reports in the initialize response.
const serverName = "phantom-token-example"

// sessionTimeout closes MCP sessions that stay idle this long.
const sessionTimeout = 10 * time.Minute

// New returns the MCP endpoint handler (mount it at /mcp). Requests without
// a valid JWT get 401 with a Bearer challenge and never reach MCP.
//
// The JWKS is fetched on the first request, not by New; its background
// refresher stops when ctx is done, so cancel ctx when the handler is no
// longer used.
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}

	server := mcp.NewServer(&mcp.Implementation{Name: serverName, Version: "1.0.0"}, nil)
	addTools(server)
	if cfg.API != nil {
		addAPITool(server, newExchanger(*cfg.API))
	}
	getServer := func(*http.Request) *mcp.Server { return server }
	// Older clients get stateful sessions (Mcp-Session-Id). 2026-07-28 has
	// no sessions, and the go-sdk serves it only on a stateless handler, so
	// requests of that version (and later ones) go there. The SDK's
	// DNS-rebinding protection stays on in both (see the package
	// documentation).
	stateful := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{SessionTimeout: sessionTimeout})
	stateless := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Stateless: true})
	if cfg.Stateless {
		return v.middleware(stateless), nil
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Protocol versions are dates: they compare as strings.
		if r.Header.Get("MCP-Protocol-Version") >= statelessProtocol {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
	return v.middleware(handler), nil
}

// statelessProtocol is the first MCP protocol version without sessions.
const statelessProtocol = "2026-07-28"

// validate checks that the required fields are set and well formed.
func (c Config) validate() error {
	if c.JWKSURL == "" {
		return errors.New("mcpserver: JWKSURL is required")
	}
	u, err := url.Parse(c.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("mcpserver: JWKSURL %q is not an absolute http(s) URL", c.JWKSURL)
	}
	if c.Issuer == "" {
		return errors.New("mcpserver: Issuer is required")
	}
	if c.Resource == "" {
		return errors.New("mcpserver: Resource is required")
	}
	if c.API != nil {
		return c.API.validate()
	}
	return nil
}

// RequireJWT returns the JWT checks New puts in front of the MCP server
// (signature against cfg.JWKSURL, issuer, "aud" containing cfg.Resource,
// expiry, typ; 401/400 with a Bearer challenge otherwise) as a middleware
// for any handler, so an API behind the gateway can check its JWTs the same
// way. The handler finds the verified token with auth.TokenInfoFromContext
// and its claims with Claims. Stateless, API and the tools are ignored.
func RequireJWT(ctx context.Context, cfg Config) (func(http.Handler) http.Handler, error) {
	cfg.API = nil
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return v.middleware, nil
}
