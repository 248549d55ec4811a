package demoas

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
)

// Client is an OAuth client registered at the demo authorization server.
// Every such client is confidential and may use the client credentials grant
// (and token exchange, when an Exchange names it). Clients that log users in
// register themselves instead (see RegistrationPath and doc.go).
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the plain client secret; the server keeps only a bcrypt hash.
	Secret string
	// Scopes lists the scopes the client may request. A token request without
	// a scope parameter is granted all of them.
	Scopes []string
	// Audience lists the audiences the client may request with fosite's
	// "audience" parameter (exact string match).
	Audience []string
	// Resources lists the RFC 8707 resource indicators (absolute URIs, no
	// fragment) the client may request with the "resource" parameter (exact
	// string match); another one is refused with 400 invalid_target. Empty
	// means any absolute URI. Requested resources become the token's audience.
	//
	// A token request with neither "resource" nor "audience" is granted all
	// of Audience and Resources as its audience.
	Resources []string
}

// Config configures Start.
type Config struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// Clients are the registered clients.
	Clients []Client
	// TokenLifetime is the access token lifetime; default 1h.
	TokenLifetime time.Duration

	// Users can log in at the authorization endpoint (authorization code
	// grant). Empty: the grant is off, as before.
	Users []User
	// Resources are the protected resources tokens are issued for by the
	// authorization code grant and token exchange, each with the scopes it
	// accepts (least privilege: a token for a resource carries only scopes of
	// that resource).
	Resources []Resource
	// Exchanges are the RFC 8693 token exchanges clients may perform.
	Exchanges []Exchange
	// MetadataClient fetches Client ID Metadata Documents; nil means a
	// client with a 10s timeout. Tests pass one that trusts a test CA.
	MetadataClient *http.Client
}

// Server is a running demo authorization server.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:PORT.
	URL string
	// Issuer is the issuer identifier ("iss"); it equals URL.
	Issuer string

	provider *fosite.Fosite
	store    *store
	strategy *oauth2.HMACSHAStrategy
	signer   *signer
	lifetime time.Duration

	users     *userDB // nil: no authorization code grant
	resources resources
	exchanges []Exchange

	srv           *http.Server
	introspection atomic.Int64
	closeOnce     sync.Once
	closeErr      error
}

// Endpoint paths served by the demo authorization server.
const (
	TokenPath         = "/oauth2/token"
	IntrospectionPath = "/oauth2/introspect"
	RevocationPath    = "/oauth2/revoke"
	JWKSPath          = "/.well-known/jwks.json"
	// MetadataPath serves RFC 8414 authorization server metadata.
	MetadataPath = "/.well-known/oauth-authorization-server"
	// OpenIDConfigurationPath serves the same document, for clients that
	// look there first or fall back to it.
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	// AuthorizationPath is the authorization endpoint the metadata must name
	// (RFC 8414 requires it, and so does the MCP TypeScript SDK). With
	// Config.Users it serves the login and consent page of the authorization
	// code grant; without, it answers every request with
	// unsupported_response_type, as the server then issues tokens by client
	// credentials (and token exchange) only.
	//
	// The page's elements, for browser automation: #client (the client's
	// name in #client-name and client_id in #client-id), #resource (its
	// name in #resource-name and URL in #resource-url), #scopes (one li per
	// scope to be granted), #error (after a failed login), input#username,
	// input#password, button#allow and button#deny (name "decision", values
	// "allow" and "deny").
	AuthorizationPath = "/oauth2/authorize"
	// RegistrationPath is the RFC 7591 dynamic client registration endpoint,
	// served when Config.Users is non-empty.
	RegistrationPath = "/oauth2/register"
)

// Start starts a demo authorization server and returns once it accepts
// connections. Call Close to stop it.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = time.Hour
	}

	res, err := newResources(cfg.Resources)
	if err != nil {
		return nil, err
	}
	users, err := newUserDB(cfg.Users)
	if err != nil {
		return nil, err
	}
	if users != nil && len(res) == 0 {
		return nil, errors.New("demoas: Users need at least one Resource to log in for")
	}
	exchanges, err := newExchanges(cfg.Exchanges, res)
	if err != nil {
		return nil, err
	}

	store := newStore()
	for _, c := range cfg.Clients {
		if err := store.add(c); err != nil {
			return nil, err
		}
	}
	if users != nil {
		// Clients that log users in (CIMD and DCR) may request every
		// resource's scopes and audience: fosite checks requests against
		// them, the narrowing to one resource is done by handleAuthorize.
		store.loginClients = &clientTemplate{scopes: res.allScopes(), audience: res.urls()}
		store.cimd = newCIMDResolver(cfg.MetadataClient)
	}

	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("demoas: generate HMAC secret: %w", err)
	}
	sig, err := newSigner()
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("demoas: listen on %s: %w", cfg.Addr, err)
	}
	baseURL := "http://" + ln.Addr().String()

	fcfg := &fosite.Config{
		AccessTokenLifespan:      cfg.TokenLifetime,
		GlobalSecret:             secret,
		TokenURL:                 baseURL + TokenPath,
		AccessTokenIssuer:        baseURL,
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.ExactAudienceMatchingStrategy,
		// OAuth 2.1: PKCE for every authorization code, S256 only (the
		// plain method stays disabled, fosite's default).
		EnforcePKCE: true,
		// Refresh tokens go to every client registered for the
		// refresh_token grant, without an offline_access scope (which is
		// OpenID Connect's, and no resource here accepts it).
		RefreshTokenScopes: []string{},
		// "state" is optional: PKCE already protects the redirect against
		// CSRF (OAuth 2.1 §7.5.1), and the MCP TypeScript SDK sends a state
		// only when its provider implements state(). fosite would refuse a
		// missing or short one.
		MinParameterEntropy: -1,
	}
	// fosite sets a missing hasher lazily on first use, which races when the
	// first token requests arrive together; set it up front.
	fcfg.ClientSecretsHasher = &fosite.BCrypt{Config: fcfg}
	strategy := compose.NewOAuth2HMACStrategy(fcfg)
	factories := []compose.Factory{
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	}
	if users != nil {
		// Order matters: the code and refresh handlers restore the
		// authorized audience that resourceBinding then checks the token
		// request's "resource" against, before PKCE consumes the challenge.
		factories = append(factories,
			compose.OAuth2AuthorizeExplicitFactory,
			compose.OAuth2RefreshTokenGrantFactory,
			resourceBindingFactory,
			compose.OAuth2PKCEFactory,
		)
	}
	provider, ok := compose.Compose(fcfg, store, strategy, factories...).(*fosite.Fosite)
	if !ok {
		_ = ln.Close()
		return nil, errors.New("demoas: fosite compose returned an unexpected provider type")
	}

	s := &Server{
		URL:       baseURL,
		Issuer:    baseURL,
		provider:  provider,
		store:     store,
		strategy:  strategy,
		signer:    sig,
		lifetime:  cfg.TokenLifetime,
		users:     users,
		resources: res,
		exchanges: exchanges,
	}
	if len(exchanges) > 0 {
		fcfg.TokenEndpointHandlers.Append(&exchangeHandler{
			srv: s,
			issue: &oauth2.HandleHelper{
				AccessTokenStrategy: strategy,
				AccessTokenStorage:  store,
				Config:              fcfg,
			},
		})
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// routes returns the server's HTTP handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Browser-based MCP clients (MCP Inspector) call these from another
	// origin; see cors.go.
	handleCORS(mux, http.MethodPost, TokenPath, s.handleToken)
	handleCORS(mux, http.MethodPost, RevocationPath, s.handleRevoke)
	handleCORS(mux, http.MethodGet, JWKSPath, s.handleJWKS)
	handleCORS(mux, http.MethodGet, MetadataPath, s.handleMetadata)
	handleCORS(mux, http.MethodGet, OpenIDConfigurationPath, s.handleMetadata)
	mux.HandleFunc(IntrospectionPath, s.handleIntrospect)
	mux.HandleFunc(AuthorizationPath, s.handleAuthorize)
	if s.users != nil {
		handleCORS(mux, http.MethodPost, RegistrationPath, s.handleRegister)
	}
	return mux
}

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.srv.Close() })
	return s.closeErr
}

// IntrospectionCalls returns the number of introspection requests served,
// whatever their outcome.
func (s *Server) IntrospectionCalls() int64 { return s.introspection.Load() }

// ResetIntrospectionCalls sets the introspection counter back to zero.
func (s *Server) ResetIntrospectionCalls() { s.introspection.Store(0) }

// Revoke revokes an access token issued by this server, as if its client had
// called the revocation endpoint.
func (s *Server) Revoke(token string) error {
	ctx := context.Background()
	sig := s.strategy.AccessTokenSignature(ctx, token)
	req, err := s.store.GetAccessTokenSession(ctx, sig, nil)
	if err != nil {
		return fmt.Errorf("demoas: revoke: unknown access token: %w", err)
	}
	if err := s.store.RevokeAccessToken(ctx, req.GetID()); err != nil {
		return fmt.Errorf("demoas: revoke: %w", err)
	}
	return nil
}

// AddClient registers another client while the server runs. Its ID must be
// new.
func (s *Server) AddClient(c Client) error { return s.store.add(c) }

// PublicKeys returns the JWKS the server publishes at JWKSPath.
func (s *Server) PublicKeys() jwk.Set { return s.signer.public }
