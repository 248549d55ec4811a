// Package caddymodule is the Caddy glue of caddy-phantom-token: the
// http.handlers.phantom_token module, its Caddyfile directive, the request
// path, challenges and metrics. The authorization-server client lives in
// package introspect and the token cache in package cache; neither imports
// Caddy.
package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler implements the phantom token pattern: it takes the opaque bearer
// token of a request, introspects it at the authorization server (AS),
// caches the result and forwards the request with "Authorization: Bearer
// <JWT>" in place of the opaque token. Requests without a valid token never
// reach the next handler.
type Handler struct {
	// IntrospectionEndpoint is the AS introspection URL. Required. It must be
	// https, or http only when the host is a loopback address. Placeholders
	// {env.*} and {file.*} are resolved at provisioning.
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`

	// ClientID is the gateway's own client identifier at the AS. Required.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is the gateway's client secret at the AS. Required. Use
	// {env.NAME} or {file.PATH} to keep it out of the config; empty after
	// resolution is an error.
	ClientSecret string `json:"client_secret,omitempty"`

	// ClientAuth is how the gateway authenticates to the AS:
	// "client_secret_basic" (default) or "client_secret_post".
	ClientAuth string `json:"client_auth,omitempty"`

	// IntrospectionFormat is what the AS answers: "jwt" (default; Curity
	// style, the access-token JWT itself for Accept: application/jwt, 204
	// when inactive) or "json" (RFC 7662, with the JWT to forward in the
	// member named by JWTClaim).
	IntrospectionFormat string `json:"introspection_format,omitempty"`

	// JWTClaim names the member of a JSON introspection response that holds
	// the JWT to forward (Curity "phantom_token", Keycloak "jwt"). Required
	// with the json format, not allowed with jwt.
	JWTClaim string `json:"jwt_claim,omitempty"`

	// ASJWKSURI is the AS JWKS URL. Optional; when set, every JWT the AS
	// returns is signature-verified before it is forwarded. Keys are fetched
	// on first use, cached and refreshed.
	ASJWKSURI string `json:"as_jwks_uri,omitempty"`

	// Issuer is the expected "iss" of the JWTs (and introspection responses)
	// from the AS. Optional.
	Issuer string `json:"issuer,omitempty"`

	// Resource is the canonical URL of the protected resource behind this
	// route, as clients address it (https, or http only on loopback; no
	// fragment). Optional; when set, a token's audience must contain it (or
	// one of Audience) on every request, the protected resource metadata is
	// served, and every challenge points to it.
	Resource string `json:"resource,omitempty"`

	// Audience lists further audience values accepted besides Resource.
	Audience []string `json:"audience,omitempty"`

	// AllowMissingAudience accepts tokens without "aud" when Resource is set.
	// Only safe when the AS itself filters introspection results by the
	// introspecting client's audience.
	AllowMissingAudience bool `json:"allow_missing_audience,omitempty"`

	// AuthorizationServers lists the issuer URLs of the authorization
	// servers that issue tokens for Resource, published in the protected
	// resource metadata (RFC 9728). At least one is required with Resource.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`

	// ScopesSupported is published in the protected resource metadata.
	// Optional.
	ScopesSupported []string `json:"scopes_supported,omitempty"`

	// ResourceName is the human-readable name published in the protected
	// resource metadata. Optional.
	ResourceName string `json:"resource_name,omitempty"`

	// ResourceDocumentation is a URL of documentation for developers,
	// published in the protected resource metadata. Optional.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`

	// MetadataPath overrides the request path at which this handler serves
	// the protected resource metadata, for deployments where a proxy in
	// front of Caddy rewrites paths. The URL advertised in challenges stays
	// the one RFC 9728 derives from Resource. Default: derived from
	// Resource ("https://h/mcp" → "/.well-known/oauth-protected-resource/mcp").
	MetadataPath string `json:"metadata_path,omitempty"`

	// RequiredScopes must all be present in the token's scope, else the
	// request is refused with 403 insufficient_scope.
	RequiredScopes []string `json:"required_scopes,omitempty"`

	// Cache configures the token cache. Defaults: max_ttl 5m, negative_ttl
	// 5s, max_size 64 MiB.
	Cache *CacheConfig `json:"cache,omitempty"`

	// Timeout bounds a whole AS call. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Realm is the optional realm parameter of WWW-Authenticate challenges.
	Realm string `json:"realm,omitempty"`

	client     *introspect.Client
	verifier   *introspect.JWKSVerifier
	tokens     *cache.Cache[*entry]
	keyer      cache.Keyer
	poolKey    string
	challenges challenges
	maxTTL     time.Duration
	negTTL     time.Duration
	resource   *audienceMatcher
	metadata   *metadata
	logger     *zap.Logger
	cancel     context.CancelFunc
}

// CacheConfig bounds the token cache of one handler.
type CacheConfig struct {
	// MaxTTL is the longest time an introspection result is reused; it is
	// the revocation window. 0 disables caching. Default: 5m.
	MaxTTL *caddy.Duration `json:"max_ttl,omitempty"`

	// NegativeTTL is how long an inactive result is remembered, so a burst
	// of requests with a revoked or made-up token does not reach the AS.
	// 0 disables negative caching. Default: 5s.
	NegativeTTL *caddy.Duration `json:"negative_ttl,omitempty"`

	// MaxSize bounds the cache in bytes of what entries really hold.
	// Default: 64 MiB.
	MaxSize int64 `json:"max_size,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.phantom_token",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
