// Package caddymodule is the Caddy glue of caddy-phantom-token: the
// http.handlers.phantom_token module, its Caddyfile directive, the request
// path, challenges and metrics. The authorization-server client lives in
// package introspect and the token cache in package cache; neither imports
// Caddy.
package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/introspect"
	"github.com/phantomgate/caddy-phantom-token/signer"
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

	// ClientAssertionKey is the file (PEM or JWK) of the private key that
	// signs RFC 7523 client assertions with client_auth private_key_jwt.
	ClientAssertionKey string `json:"client_assertion_key,omitempty"`

	// ClientAssertionAudience is the "aud" of client assertions. Default:
	// the endpoint being called. Some servers want their issuer URL.
	ClientAssertionAudience string `json:"client_assertion_audience,omitempty"`

	// TLSClientCert and TLSClientKey are the files of the client
	// certificate and key presented to the AS with client_auth
	// tls_client_auth (RFC 8705).
	TLSClientCert string `json:"tls_client_cert,omitempty"`
	TLSClientKey  string `json:"tls_client_key,omitempty"`

	// TLSCA is an optional CA file (PEM) for verifying the AS's server
	// certificate (introspection, token exchange and as_jwks_uri), with
	// any client_auth. Default: the system roots.
	TLSCA string `json:"tls_ca,omitempty"`

	// IntrospectionIATSkew bounds how old or how far in the future the
	// "iat" of an RFC 9701 introspection response may be. Default: 60s.
	IntrospectionIATSkew caddy.Duration `json:"introspection_iat_skew,omitempty"`

	// TokenExchange obtains the JWT to forward by RFC 8693 token exchange
	// at the AS. One JWT source (jwt_claim, token_exchange or sign) is
	// required with the json and rfc9701 formats.
	TokenExchange *TokenExchangeConfig `json:"token_exchange,omitempty"`

	// Sign makes the gateway issue the JWT to forward itself (RFC 9068),
	// signed with its own key; the public keys are served at JWKSPath.
	Sign *SignConfig `json:"sign,omitempty"`

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

	// Timeout bounds a whole cache miss: the wait for a free AS call slot,
	// introspection, the AS JWKS fetch it may need, and a token exchange.
	// Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Realm is the optional realm parameter of WWW-Authenticate challenges.
	Realm string `json:"realm,omitempty"`

	// Leeway is the clock skew tolerated between the gateway and the AS
	// when checking "nbf" (of tokens and of RFC 9701 responses) and "iat"
	// (RFC 9701, on top of IntrospectionIATSkew). It never extends "exp":
	// an expired token is refused however small the skew. Default 0; at
	// most 5m.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// MaxConcurrentIntrospections bounds the AS calls (introspection and
	// what a miss needs besides: token exchange, JWKS) in flight at once,
	// shared by every handler with the same AS, client and resource
	// settings. When all are busy a miss waits at most 250ms, in a queue a
	// quarter as long; beyond that it is answered 503 with Retry-After at
	// once, without calling the AS. Cache hits never wait. Default: 64.
	MaxConcurrentIntrospections int `json:"max_concurrent_introspections,omitempty"`

	// CircuitBreaker stops calling an AS that keeps failing: misses are
	// answered 503 with Retry-After for a cool-off, then one probe decides.
	// On by default (failures 5, cool_off 5s); cached tokens keep working.
	CircuitBreaker *CircuitBreakerConfig `json:"circuit_breaker,omitempty"`

	// MCPOperations are per-operation rules for MCP: the scopes a JSON-RPC
	// method (and tool, prompt or resource name) needs on top of
	// required_scopes. With at least one, POST bodies are read (up to
	// MaxBody) and classified. The first matching rule applies.
	MCPOperations []MCPOperation `json:"mcp_operations,omitempty"`

	// ScopeImplies maps a broad scope to the narrower scopes it grants,
	// transitively: a token with the broad scope satisfies any of them,
	// in required_scopes and in mcp_operations alike.
	ScopeImplies map[string][]string `json:"scope_implies,omitempty"`

	// MaxBody bounds the POST body read to find the MCP operation; larger
	// bodies are answered 413. Only with MCPOperations. Default: 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// DPoP accepts DPoP-bound tokens (RFC 9449): "Authorization: DPoP
	// <token>" with a DPoP proof, verified, and the proof key checked
	// against the token's cnf.jkt on every request. Nil: only Bearer.
	DPoP *DPoPConfig `json:"dpop,omitempty"`

	// MTLSBound accepts certificate-bound tokens (RFC 8705): a token whose
	// introspection has cnf["x5t#S256"] is accepted only on a TLS
	// connection whose client certificate hashes to it. Without it, such
	// tokens are refused (the gateway cannot enforce their binding).
	MTLSBound bool `json:"mtls_bound,omitempty"`

	client     *introspect.Client
	exchanger  *introspect.Exchanger
	signer     *signer.Signer
	jwksPath   string
	verifier   *introspect.JWKSVerifier
	tokens     *cache.Cache[entry]
	keyer      cache.Keyer
	poolKey    string
	challenges challenges
	maxTTL     time.Duration
	negTTL     time.Duration
	timeout    time.Duration // Timeout or its default: bounds a whole miss
	leeway     int64         // Leeway in nanoseconds, for authorize
	// acceptCached is usable with the current time, for the cache's
	// in-flight re-check; made once so a miss does not build a closure.
	acceptCached func(cache.Key, entry) bool
	resource     *audienceMatcher
	policy       *policy
	metadata     *metadata
	logger       *zap.Logger
	// verifierKey is this handler's share of the verifiers pool, "" when none.
	verifierKey string
	guard       *asGuard
	guardKey    string
	// shared is the Redis second level (nil without cache.redis), and
	// sharedKey this handler's share of it in sharedStores.
	shared    *sharedStore
	sharedKey string
	// domain holds the purge marks every hit checks: the fleet's with
	// Redis, the process's without.
	domain *purgeDomain
	// mcp is the per-operation authorization; nil without mcp_operation.
	mcp *mcpPolicy
	// dpop is the DPoP proof checking; nil without dpop.
	dpop *dpopState
}

// DPoPConfig configures DPoP (RFC 9449) at the gateway.
type DPoPConfig struct {
	// Required refuses Bearer tokens on this route: every request must be
	// DPoP.
	Required bool `json:"required,omitempty"`
	// Algorithms are the JWS algorithms a proof may use. Default: ES256,
	// EdDSA, PS256. Never none or HMAC.
	Algorithms []string `json:"algorithms,omitempty"`
	// MaxAge is how old a proof's iat may be (the future side is
	// leeway). Default: 60s.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// Nonce requires server-provided nonces (RFC 9449 §8): a proof
	// without a valid one gets 401 use_dpop_nonce with a DPoP-Nonce
	// header.
	Nonce bool `json:"nonce,omitempty"`
	// Origin is the scheme://host[:port] proofs name in htu, when Caddy
	// sits behind a proxy; default the origin of resource. Never taken
	// from Host or X-Forwarded-*.
	Origin string `json:"origin,omitempty"`
}

// TokenExchangeConfig configures RFC 8693 token exchange: the opaque token
// is the subject token, the route's resource the target, and the gateway
// authenticates as it does for introspection.
type TokenExchangeConfig struct {
	// Endpoint is the AS token endpoint. Required.
	Endpoint string `json:"endpoint,omitempty"`
	// Audience is sent as the "audience" parameter. Optional.
	Audience string `json:"audience,omitempty"`
	// RequestedTokenType is sent as "requested_token_type". Default:
	// urn:ietf:params:oauth:token-type:jwt.
	RequestedTokenType string `json:"requested_token_type,omitempty"`
	// Scope is sent as "scope" (space-separated). Optional.
	Scope string `json:"scope,omitempty"`
}

// SignConfig configures gateway-signed JWTs.
type SignConfig struct {
	// Issuer is the "iss" of the JWTs. Required.
	Issuer string `json:"issuer,omitempty"`
	// Key is the file (PEM or JWK) of the private signing key: RSA
	// (RS256), EC P-256 (ES256) or Ed25519 (EdDSA). Required unless
	// EphemeralKey is set.
	Key string `json:"key,omitempty"`
	// PreviousKey is an optional earlier key file, published in the JWKS
	// only, for rotations.
	PreviousKey string `json:"previous_key,omitempty"`
	// Lifetime bounds each JWT; it never outlives the opaque token.
	// Default: 5m.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
	// JWKSPath is where the public keys are served (GET/HEAD, no token).
	// Default: /.well-known/jwks.json.
	JWKSPath string `json:"jwks_path,omitempty"`
	// EphemeralKey signs with a key generated at startup instead of Key.
	// For demos only: JWTs stop verifying when Caddy restarts.
	EphemeralKey bool `json:"ephemeral_key,omitempty"`
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

	// MaxSize bounds, in bytes, the memory the cache makes the process
	// hold: what its entries hold plus the room Go's collector keeps for
	// them (GOGC percent more; see liveBytesFor). With the default
	// GOGC=100 the entries themselves hold at most half of it. Entries
	// beyond it are evicted. Default: 64 MiB.
	MaxSize int64 `json:"max_size,omitempty"`

	// Redis adds a second cache level shared by every gateway node that
	// uses the same Redis and secret, with fleet-wide purge. Optional.
	Redis *RedisConfig `json:"redis,omitempty"`
}

// CircuitBreakerConfig configures the AS circuit breaker of a handler
// (shared, like the concurrency limit, by handlers with the same AS, client
// and resource settings). Only the AS being unreachable, timing out or
// answering 5xx counts as a failure; inactive tokens and other answers do
// not.
type CircuitBreakerConfig struct {
	// Failures is how many consecutive AS failures open the breaker. -1
	// turns the breaker off. Default: 5.
	Failures int `json:"failures,omitempty"`

	// CoolOff is how long an open breaker answers misses 503 before it
	// lets one probe through to the AS; the probe's success closes it, its
	// failure starts another cool-off. Default: 5s.
	CoolOff caddy.Duration `json:"cool_off,omitempty"`
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
