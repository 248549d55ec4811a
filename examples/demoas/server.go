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
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"
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
	// Audience lists the audiences the client may request (exact string
	// match). A token request without an audience parameter is granted all of
	// them.
	Audience []string
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
	store    *storage.MemoryStore
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
	MetadataPath      = "/.well-known/oauth-authorization-server"
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

	store := storage.NewMemoryStore()
	for _, c := range cfg.Clients {
		fc, err := newFositeClient(c)
		if err != nil {
			return nil, err
		}
		if _, dup := store.Clients[c.ID]; dup {
			return nil, fmt.Errorf("demoas: duplicate client %q", c.ID)
		}
		store.Clients[c.ID] = fc
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

// newFositeClient converts c into a fosite client with a hashed secret.
func newFositeClient(c Client) (*fosite.DefaultClient, error) {
	if c.ID == "" {
		return nil, errors.New("demoas: client with an empty ID")
	}
	if c.Secret == "" {
		return nil, fmt.Errorf("demoas: client %q has an empty secret", c.ID)
	}
	// The minimum bcrypt cost keeps tests fast; this is a demo server.
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Secret), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("demoas: hash secret of client %q: %w", c.ID, err)
	}
	return &fosite.DefaultClient{
		ID:         c.ID,
		Secret:     hash,
		Scopes:     append([]string(nil), c.Scopes...),
		Audience:   append([]string(nil), c.Audience...),
		GrantTypes: []string{"client_credentials"},
	}, nil
}

// routes returns the server's HTTP handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.handleToken)
	mux.HandleFunc(IntrospectionPath, s.handleIntrospect)
	mux.HandleFunc("POST "+RevocationPath, s.handleRevoke)
	mux.HandleFunc("GET "+JWKSPath, s.handleJWKS)
	mux.HandleFunc("GET "+MetadataPath, s.handleMetadata)
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

// PublicKeys returns the JWKS the server publishes at JWKSPath.
func (s *Server) PublicKeys() jwk.Set { return s.signer.public }
