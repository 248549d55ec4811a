// Package exampleapi is the "existing OAuth-secured API" of the example
// deployment: a small JSON API behind the gateway that receives
// "Authorization: Bearer <JWT>" with its own audience, as the MCP server
// does, and returns data belonging to the token's subject.
//
// It checks every JWT the way the example MCP server does (signature
// against the authorization server's JWKS, issuer, "aud" containing this
// API's resource URL, expiry, typ, and the scope Config.Scope; see
// mcpserver.RequireJWT). A JWT minted for another audience (the MCP
// server's) is refused with 401 invalid_token.
//
// Endpoints:
//
//	GET {Prefix}/me    {"user": <sub>, "notes": [...]}: the subject's notes
package exampleapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// Config configures New.
type Config struct {
	// JWKSURL, Issuer and Resource are as in mcpserver.Config: the JWTs'
	// signing keys, "iss", and this API's resource URL, which "aud" must
	// contain. Required.
	JWKSURL, Issuer, Resource string
	// Scope is the scope every request needs. Required.
	Scope string
	// Prefix is the path the API is mounted at (e.g. "/api"), stripped
	// before routing; default none.
	Prefix string
	// Notes are the data, per subject; a subject without any gets none.
	Notes map[string][]string
	// HTTPClient fetches the JWKS; default a client with a 10s timeout.
	HTTPClient *http.Client
}

// New returns the API handler; its JWKS refresher stops when ctx is done.
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.Scope == "" {
		return nil, errors.New("exampleapi: Scope is required")
	}
	requireJWT, err := mcpserver.RequireJWT(ctx, mcpserver.Config{
		JWKSURL: cfg.JWKSURL, Issuer: cfg.Issuer, Resource: cfg.Resource,
		RequiredScopes: []string{cfg.Scope}, HTTPClient: cfg.HTTPClient, Realm: "api",
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		info := auth.TokenInfoFromContext(r.Context())
		notes := cfg.Notes[info.UserID]
		if notes == nil {
			notes = []string{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"user": info.UserID, "notes": notes})
	})
	return requireJWT(http.StripPrefix(cfg.Prefix, mux)), nil
}
