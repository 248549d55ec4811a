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
// Every client is confidential and may use the client credentials grant.
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
	// (RFC 8414 requires it, and so does the MCP TypeScript SDK); it answers
	// every request with unsupported_response_type, as this server issues
	// tokens by client credentials only.
	AuthorizationPath = "/oauth2/authorize"
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

	store := newStore()
	for _, c := range cfg.Clients {
		if err := store.add(c); err != nil {
			return nil, err
		}
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
	}
	// fosite sets a missing hasher lazily on first use, which races when the
	// first token requests arrive together; set it up front.
	fcfg.ClientSecretsHasher = &fosite.BCrypt{Config: fcfg}
	strategy := compose.NewOAuth2HMACStrategy(fcfg)
	provider, ok := compose.Compose(fcfg, store, strategy,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	).(*fosite.Fosite)
	if !ok {
		_ = ln.Close()
		return nil, errors.New("demoas: fosite compose returned an unexpected provider type")
	}

	s := &Server{
		URL:      baseURL,
		Issuer:   baseURL,
		provider: provider,
		store:    store,
		strategy: strategy,
		signer:   sig,
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
	mux.HandleFunc("POST "+TokenPath, s.handleToken)
	mux.HandleFunc(IntrospectionPath, s.handleIntrospect)
	mux.HandleFunc("POST "+RevocationPath, s.handleRevoke)
	mux.HandleFunc("GET "+JWKSPath, s.handleJWKS)
	mux.HandleFunc("GET "+MetadataPath, s.handleMetadata)
	mux.HandleFunc("GET "+OpenIDConfigurationPath, s.handleMetadata)
	mux.HandleFunc(AuthorizationPath, s.handleAuthorize)
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
