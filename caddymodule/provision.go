package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// Defaults of the documented config fields.
const (
	defaultMaxTTL      = 5 * time.Minute
	defaultNegativeTTL = 5 * time.Second
	defaultMaxSize     = 64 << 20
	defaultTimeout     = 5 * time.Second
	// maxLeeway bounds leeway: clocks further apart than this are a
	// broken deployment, and a larger leeway would accept tokens long
	// before their nbf.
	maxLeeway = 5 * time.Minute
)

var (
	clientAuthMethods = []string{string(introspect.ClientSecretBasic), string(introspect.ClientSecretPost),
		string(introspect.PrivateKeyJWT), string(introspect.TLSClientAuth)}
	introspectionFormats = []string{string(introspect.FormatJWT), string(introspect.FormatJSON), string(introspect.FormatRFC9701)}
)

// now is the handler's clock; tests replace it so TTL checks never sleep.
var now = time.Now

// caches holds the token caches by config identity, so that a config
// reload that keeps the same AS, client and cache settings keeps its warm
// cache instead of stampeding the AS.
var caches = caddy.NewUsagePool()

// pooledCache lets the usage pool close a cache when its last user leaves.
type pooledCache struct{ *cache.Cache[entry] }

// Destruct implements caddy.Destructor.
func (p pooledCache) Destruct() error {
	p.Close()
	return nil
}

// Provision resolves placeholders, validates the config and builds the AS
// client and the cache. It does no network I/O, so `caddy validate` works
// with the AS unreachable.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	for _, f := range []struct {
		name string
		val  *string
	}{
		{"introspection_endpoint", &h.IntrospectionEndpoint},
		{"client_id", &h.ClientID},
		{"client_secret", &h.ClientSecret},
		{"as_jwks_uri", &h.ASJWKSURI},
		{"issuer", &h.Issuer},
		{"resource", &h.Resource},
		{"client_assertion_key", &h.ClientAssertionKey},
		{"tls_client_cert", &h.TLSClientCert},
		{"tls_client_key", &h.TLSClientKey},
		{"tls_ca", &h.TLSCA},
	} {
		raw := *f.val
		*f.val = strings.TrimSpace(repl.ReplaceKnown(raw, ""))
		if raw != "" && *f.val == "" {
			return fmt.Errorf("%s: empty after resolving placeholders in %q", f.name, redactPlaceholders(raw))
		}
	}
	if err := h.validateConfig(); err != nil {
		return err
	}
	if err := h.validateMCP(); err != nil {
		return err
	}

	h.maxTTL, h.negTTL = defaultMaxTTL, defaultNegativeTTL
	maxSize := int64(defaultMaxSize)
	if c := h.Cache; c != nil {
		if c.MaxTTL != nil {
			h.maxTTL = time.Duration(*c.MaxTTL)
		}
		if c.NegativeTTL != nil {
			h.negTTL = time.Duration(*c.NegativeTTL)
		}
		if c.MaxSize != 0 {
			maxSize = c.MaxSize
		}
	}
	timeout := time.Duration(h.Timeout)
	if timeout == 0 {
		timeout = defaultTimeout
	}
	h.timeout = timeout

	if h.ASJWKSURI != "" {
		if err := h.loadVerifier(); err != nil {
			return fmt.Errorf("as_jwks_uri: %v", err)
		}
	}
	auth, err := h.provisionClientAuth(timeout)
	if err != nil {
		return err
	}
	client, err := introspect.New(introspect.Config{
		Endpoint:          h.IntrospectionEndpoint,
		ClientID:          h.ClientID,
		ClientSecret:      h.ClientSecret,
		ClientAuth:        introspect.ClientAuth(h.ClientAuth),
		AssertionKey:      auth.assertionKey,
		AssertionAudience: h.ClientAssertionAudience,
		Format:            introspect.Format(h.IntrospectionFormat),
		JWTClaim:          h.JWTClaim,
		Issuer:            h.Issuer,
		Verifier:          h.verifier,
		MaxIATSkew:        time.Duration(h.IntrospectionIATSkew),
		Leeway:            time.Duration(h.Leeway),
		Timeout:           timeout,
		HTTPClient:        auth.httpClient,
		Now:               func() time.Time { return now() },
	})
	if err != nil {
		return fmt.Errorf("configuring the introspection client: %v", err)
	}
	h.client = client
	if h.TokenExchange != nil {
		if err := h.provisionExchanger(auth); err != nil {
			return err
		}
	}
	if h.Sign != nil {
		if err := h.provisionSigner(); err != nil {
			return err
		}
	}

	metadataURL := ""
	if h.Resource != "" {
		h.resource = newAudienceMatcher(h.Resource, h.Audience)
		md, err := h.newMetadata()
		if err != nil {
			return err
		}
		h.metadata, metadataURL = md, md.url
		if strings.Contains(h.Resource, "?") {
			h.logger.Warn("resource has a query component; RFC 8707 advises against it, and clients may not match it",
				zap.String("resource", h.Resource))
		}
	}
	h.challenges = newChallenges(h.Realm, withoutOfflineAccess(h.RequiredScopes), metadataURL, h.dpopChallenges())
	satisfiers := scopeSatisfiers(h.ScopeImplies)
	h.policy = newPolicy(policy{resource: h.resource, allowMissingAudience: h.AllowMissingAudience,
		requiredScopes: needsFor(h.RequiredScopes, satisfiers)})
	h.provisionMCP(satisfiers, metadataURL)
	h.leeway = int64(h.Leeway)
	h.acceptCached = func(k cache.Key, e entry) bool { return h.usable(&e, k, now()) }

	h.domain = localDomain
	if h.Cache != nil && h.Cache.Redis != nil {
		if err := h.provisionSharedStore(repl); err != nil {
			return err
		}
	}
	h.domain.keep(max(h.maxTTL, h.negTTL))
	if err := h.provisionDPoP(); err != nil {
		return err
	}

	identity := h.cacheIdentity()
	h.keyer = cache.NewKeyer(identity)
	// Handlers in different purge domains never share a cache: a purge
	// must reach every cache its marks apply to.
	h.poolKey = identity + "\x00" + strconv.FormatInt(maxSize, 10) + "\x00" + h.sharedKey
	val, _, err := caches.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		c, err := cache.New(cache.Config[entry]{
			MaxBytes: liveBytesFor(maxSize),
			Cost:     entry.cost,
			Now:      func() time.Time { return now() },
		})
		return pooledCache{c}, err
	})
	if err != nil {
		h.poolKey = ""
		return fmt.Errorf("creating the token cache: %v", err)
	}
	h.tokens = val.(pooledCache).Cache
	if err := h.provisionGuard(identity); err != nil {
		return err
	}

	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	// Last: a purge may reach this handler from now on, and needs its
	// keyer and cache.
	registerHandler(h)
	return nil
}

// cacheIdentity names everything that shapes a cached entry, so that two
// routes share cached results only when they would compute the same ones.
// The secret is left out: rotating it does not change what a token means.
func (h *Handler) cacheIdentity() string {
	parts := []string{
		h.IntrospectionEndpoint, h.ClientID, h.introspectionFormat(), h.JWTClaim,
		h.ASJWKSURI, h.Issuer, h.Resource,
	}
	if te := h.TokenExchange; te != nil {
		parts = append(parts, "token_exchange", te.Endpoint, te.Audience, te.RequestedTokenType, te.Scope)
	}
	if h.signer != nil {
		// The kid, not the key file: a new key (or a new ephemeral key
		// after a reload) must never serve JWTs the old one signed.
		parts = append(parts, "sign", h.Sign.Issuer, h.signer.KeyID(), time.Duration(h.Sign.Lifetime).String())
	}
	for i, p := range parts {
		parts[i] = strconv.Quote(p)
	}
	return strings.Join(parts, ",")
}

func (h *Handler) introspectionFormat() string {
	if h.IntrospectionFormat == "" {
		return string(introspect.FormatJWT)
	}
	return h.IntrospectionFormat
}

// validateConfig checks the resolved config; each error names the field.
func (h *Handler) validateConfig() error {
	if h.IntrospectionEndpoint == "" {
		return fmt.Errorf("introspection_endpoint: required")
	}
	if err := introspect.CheckURL(h.IntrospectionEndpoint); err != nil {
		return fmt.Errorf("introspection_endpoint: %v", err)
	}
	if h.ClientID == "" {
		return fmt.Errorf("client_id: required")
	}
	if h.ClientAuth != "" && !slices.Contains(clientAuthMethods, h.ClientAuth) {
		return fmt.Errorf("client_auth: expected one of %v, got %q", clientAuthMethods, h.ClientAuth)
	}
	if err := h.validateClientAuth(); err != nil {
		return err
	}
	format := h.introspectionFormat()
	if !slices.Contains(introspectionFormats, format) {
		return fmt.Errorf("introspection_format: expected one of %v, got %q", introspectionFormats, format)
	}
	if format == string(introspect.FormatRFC9701) && (h.ASJWKSURI == "" || h.Issuer == "") {
		return fmt.Errorf("as_jwks_uri, issuer: required with introspection_format rfc9701 (the signed response is verified against them)")
	}
	if err := h.validateJWTSource(format); err != nil {
		return err
	}
	if h.ASJWKSURI != "" {
		if err := introspect.CheckURL(h.ASJWKSURI); err != nil {
			return fmt.Errorf("as_jwks_uri: %v", err)
		}
	}
	if h.Resource != "" {
		if err := checkResourceURL(h.Resource); err != nil {
			return fmt.Errorf("resource: %v", err)
		}
		if len(h.AuthorizationServers) == 0 {
			return fmt.Errorf("authorization_server: required with resource (the issuer URL clients get tokens from)")
		}
		for _, as := range h.AuthorizationServers {
			if err := introspect.CheckURL(as); err != nil {
				return fmt.Errorf("authorization_server: %v", err)
			}
		}
		if h.ResourceDocumentation != "" {
			if u, err := url.Parse(h.ResourceDocumentation); err != nil || !u.IsAbs() {
				return fmt.Errorf("resource_documentation: expected an absolute URL, got %q", h.ResourceDocumentation)
			}
		}
		if h.MetadataPath != "" {
			if err := checkMetadataPath(h.MetadataPath); err != nil {
				return fmt.Errorf("metadata_path: %v", err)
			}
		}
	} else if len(h.Audience) > 0 || h.AllowMissingAudience || len(h.AuthorizationServers) > 0 ||
		len(h.ScopesSupported) > 0 || h.ResourceName != "" || h.ResourceDocumentation != "" || h.MetadataPath != "" {
		return fmt.Errorf("audience, allow_missing_audience, authorization_server, scopes_supported, resource_name, resource_documentation, metadata_path: only valid together with resource")
	}
	for _, s := range h.RequiredScopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			return fmt.Errorf("required_scopes: invalid scope %q (no spaces, quotes or backslashes)", s)
		}
	}
	if h.Timeout < 0 {
		return fmt.Errorf("timeout: must be positive")
	}
	if c := h.Cache; c != nil {
		if c.MaxTTL != nil && *c.MaxTTL < 0 {
			return fmt.Errorf("cache.max_ttl: must be 0 (disabled) or positive")
		}
		if c.NegativeTTL != nil && *c.NegativeTTL < 0 {
			return fmt.Errorf("cache.negative_ttl: must be 0 (disabled) or positive")
		}
		if c.MaxSize < 0 {
			return fmt.Errorf("cache.max_size: must be positive")
		}
	}
	if h.Leeway < 0 || time.Duration(h.Leeway) > maxLeeway {
		return fmt.Errorf("leeway: expected a duration from 0 to %s, got %s", maxLeeway, time.Duration(h.Leeway))
	}
	if err := h.validateGuard(); err != nil {
		return err
	}
	if strings.ContainsAny(h.Realm, "\"\\") {
		return fmt.Errorf("realm: must not contain quotes or backslashes")
	}
	return nil
}

// Validate implements caddy.Validator. Everything is checked in Provision,
// where placeholders are resolved; this only guards against a handler used
// without provisioning.
func (h *Handler) Validate() error {
	if h.client == nil || h.tokens == nil {
		return fmt.Errorf("phantom_token: not provisioned")
	}
	return nil
}

// Cleanup releases this handler's share of the cache and of the JWKS
// verifier (whose refresher stops with its last user). It copes with a
// half-provisioned handler.
func (h *Handler) Cleanup() error {
	unregisterHandler(h)
	verr := errors.Join(h.releaseVerifier(), h.releaseSharedStore())
	if h.client != nil {
		h.client.CloseIdleConnections()
	}
	if h.exchanger != nil {
		h.exchanger.CloseIdleConnections()
	}
	guardErr := h.releaseGuard()
	if h.poolKey != "" {
		_, err := caches.Delete(h.poolKey)
		h.poolKey = ""
		return errors.Join(verr, err, guardErr)
	}
	return errors.Join(verr, guardErr)
}

// redactPlaceholders shows which placeholder resolved to nothing without
// ever echoing a literal secret: only {…} parts are kept.
func redactPlaceholders(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[i : i+j+1])
		s = s[i+j+1:]
	}
	if b.Len() == 0 {
		return "…"
	}
	return b.String()
}
