package introspect

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Format selects how the AS is asked to answer, and so how the upstream JWT
// is obtained from its reply (DESIGN §4).
type Format string

const (
	// FormatJWT asks for "Accept: application/jwt" (Curity style): a 200
	// body is the access-token JWT itself, 204 means inactive.
	FormatJWT Format = "jwt"
	// FormatJSON asks for an RFC 7662 JSON reply; the JWT to forward, if
	// any, is read from the member named by Config.JWTClaim.
	FormatJSON Format = "json"
	// FormatRFC9701 asks for a signed JWT introspection response (RFC 9701,
	// "Accept: application/token-introspection+jwt"). The reply is verified
	// (Config.Verifier and Config.Issuer are required) and the decision is
	// read from its "token_introspection" member. That JWT is addressed to
	// the gateway and is never forwarded: the JWT to forward, if any, is the
	// member of "token_introspection" named by Config.JWTClaim.
	FormatRFC9701 Format = "rfc9701"
)

// ClientAuth selects how the gateway authenticates itself to the
// authorization server's introspection and token endpoints.
type ClientAuth string

const (
	// ClientSecretBasic sends the credentials in an HTTP Basic
	// Authorization header (the RFC 6749 default, and ours).
	ClientSecretBasic ClientAuth = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret as form fields.
	ClientSecretPost ClientAuth = "client_secret_post"
	// PrivateKeyJWT authenticates with a fresh JWT assertion per request,
	// signed with Config.AssertionKey (RFC 7523 §2.2). No secret is sent.
	PrivateKeyJWT ClientAuth = "private_key_jwt"
	// TLSClientAuth authenticates with the client certificate presented by
	// the HTTP client (RFC 8705 §2.1); the form carries only client_id.
	// Config.HTTPClient must present the certificate; see
	// [NewTLSClientAuthHTTPClient].
	TLSClientAuth ClientAuth = "tls_client_auth"
)

// Defaults applied by [New] to zero-valued fields.
const (
	// DefaultTimeout bounds a whole introspection call, body included.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBodyBytes caps the AS response body; introspection replies
	// are a few KiB, so 1 MiB is generous while bounding memory.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultMaxIATSkew is how far the "iat" of an RFC 9701 response may
	// lie from the gateway's clock, in either direction.
	DefaultMaxIATSkew = 60 * time.Second
)

// Config configures a [Client]. Zero values get the documented defaults.
type Config struct {
	// Endpoint is the introspection endpoint URL (required). It must be
	// https, or http only when the host is loopback (127.0.0.0/8, ::1,
	// "localhost"), so credentials and tokens never cross a network in clear.
	Endpoint string
	// ClientID is the gateway's client identifier at the AS (required).
	ClientID string
	// ClientSecret is the gateway's client secret at the AS: required with
	// ClientSecretBasic and ClientSecretPost, refused with the other
	// methods (a secret that is never sent is a configuration mistake).
	ClientSecret string
	// ClientAuth selects the client authentication method; default
	// ClientSecretBasic.
	ClientAuth ClientAuth
	// AssertionKey is the private key that signs PrivateKeyJWT assertions
	// (required with PrivateKeyJWT, refused otherwise). Its "alg" is used
	// when set, else RS256 for RSA, ES256/ES384/ES512 for P-256/P-384/P-521
	// and EdDSA for Ed25519; its "kid", when set, goes into the JWS header.
	// See [LoadPrivateKey].
	AssertionKey jwk.Key
	// AssertionAudience is the "aud" of PrivateKeyJWT assertions; default
	// Endpoint. Some servers want their issuer identifier instead.
	AssertionAudience string
	// Format selects the response format; default FormatJWT.
	Format Format
	// JWTClaim names the member holding the JWT to forward upstream: a
	// top-level member of a FormatJSON reply, or a member of the
	// "token_introspection" object of a FormatRFC9701 reply. Optional with
	// those formats (Result.JWT is then empty and the caller obtains a JWT
	// otherwise, by token exchange or by signing one); not allowed with
	// FormatJWT.
	JWTClaim string
	// Issuer is the expected "iss" of every JWT from the AS, and of the
	// JSON reply's "iss" when the reply has one. Optional, except with
	// FormatRFC9701, where it is required.
	Issuer string
	// Verifier signature-verifies every JWT from the AS before it is trusted
	// or forwarded. Optional, except with FormatRFC9701, where it is
	// required.
	Verifier *JWKSVerifier
	// MaxIATSkew bounds the distance between an RFC 9701 response's "iat"
	// and the gateway's clock, in both directions; default
	// DefaultMaxIATSkew.
	MaxIATSkew time.Duration
	// Leeway is the clock skew tolerated with the AS, added to MaxIATSkew
	// for an RFC 9701 response's "iat" and applied to its "nbf". It never
	// extends an "exp". Default 0.
	Leeway time.Duration
	// Now is the clock used for time checks and client assertions; default
	// time.Now. Tests inject a fixed clock.
	Now func() time.Time
	// Timeout bounds the whole AS call including reading the body and any
	// JWKS fetch needed to verify the reply; default DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes caps the AS response body; a larger body is a
	// KindBadResponse. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HTTPClient, when set, is used for every AS call. The default is a
	// client of our own with verified TLS (1.2 minimum) that does not follow
	// redirects: a redirected POST would resend the credentials elsewhere.
	// TLSClientAuth requires one that presents the client certificate.
	HTTPClient *http.Client
}

// Client introspects tokens at one AS. It is immutable after [New] and safe
// for concurrent use; create one per configuration and reuse it so
// connections to the AS are pooled.
type Client struct {
	poster
	format   Format
	jwtClaim string
	issuer   string
	verifier *JWKSVerifier
	iatSkew  time.Duration
	leeway   time.Duration
}

// New validates cfg, applies defaults and returns a Client. It performs no
// network I/O, so it is safe to call while provisioning or validating a
// configuration offline.
func New(cfg Config) (*Client, error) {
	if err := checkEndpoint("endpoint", cfg.Endpoint); err != nil {
		return nil, err
	}
	c := &Client{
		format:   cfg.Format,
		jwtClaim: cfg.JWTClaim,
		issuer:   cfg.Issuer,
		verifier: cfg.Verifier,
		iatSkew:  cfg.MaxIATSkew,
		leeway:   cfg.Leeway,
	}

	switch c.format {
	case "":
		c.format = FormatJWT
	case FormatJWT, FormatJSON, FormatRFC9701:
	default:
		return nil, fmt.Errorf("format %q is not supported (want %q, %q or %q)", c.format, FormatJWT, FormatJSON, FormatRFC9701)
	}
	var accept string
	switch c.format {
	case FormatJWT:
		if c.jwtClaim != "" {
			return nil, fmt.Errorf("jwt_claim is only used with format %q or %q", FormatJSON, FormatRFC9701)
		}
		accept = "application/jwt"
	case FormatJSON:
		accept = "application/json"
	case FormatRFC9701:
		if c.verifier == nil {
			return nil, fmt.Errorf("format %q needs the as jwks (a verifier)", FormatRFC9701)
		}
		if c.issuer == "" {
			return nil, fmt.Errorf("format %q needs the issuer", FormatRFC9701)
		}
		accept = mediaTypeIntrospectionJWT
	}
	switch {
	case c.iatSkew < 0:
		return nil, fmt.Errorf("max_iat_skew must not be negative, got %s", c.iatSkew)
	case c.leeway < 0:
		return nil, fmt.Errorf("leeway must not be negative, got %s", c.leeway)
	case c.iatSkew == 0:
		c.iatSkew = DefaultMaxIATSkew
	}

	p, err := newPoster(cfg.posterConfig(accept))
	if err != nil {
		return nil, err
	}
	c.poster = *p
	return c, nil
}

// posterConfig returns the settings cfg shares with [ExchangeConfig].
func (cfg Config) posterConfig(accept string) posterConfig {
	return posterConfig{
		name:       "introspection",
		endpoint:   cfg.Endpoint,
		accept:     accept,
		timeout:    cfg.Timeout,
		maxBody:    cfg.MaxBodyBytes,
		httpClient: cfg.HTTPClient,
		now:        cfg.Now,
		auth: authConfig{
			method:   cfg.ClientAuth,
			clientID: cfg.ClientID,
			secret:   cfg.ClientSecret,
			key:      cfg.AssertionKey,
			audience: cfg.AssertionAudience,
		},
	}
}

// CloseIdleConnections closes idle connections of the Client's own HTTP
// client (call it when the configuration is torn down). A caller-supplied
// Config.HTTPClient is left alone: its owner manages it.
func (c *Client) CloseIdleConnections() { c.closeIdle() }

// CheckURL accepts absolute https URLs, and http URLs whose host is
// loopback. It is exported so that configuration layers give the same
// verdict on every URL that will carry tokens or secrets (tests and demos): TLS to the AS is mandatory otherwise
// (DESIGN §7). User info is refused because it would be a second,
// unmanaged place for credentials.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid url")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("url must be absolute with a host")
	}
	if u.User != nil {
		return errors.New("url must not contain user info")
	}
	if u.Fragment != "" {
		return errors.New("url must not contain a fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("http is only allowed for loopback hosts; use https")
	default:
		return fmt.Errorf("scheme %q is not supported; use https", u.Scheme)
	}
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP
// literal. Other names are not resolved: resolution would be network I/O
// and could change after validation.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
