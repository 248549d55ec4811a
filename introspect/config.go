package introspect

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Format selects how the AS is asked to answer, and so how the upstream JWT
// is obtained from its reply (DESIGN §4).
type Format string

const (
	// FormatJWT asks for "Accept: application/jwt" (Curity style): a 200
	// body is the access-token JWT itself, 204 means inactive.
	FormatJWT Format = "jwt"
	// FormatJSON asks for an RFC 7662 JSON reply; the JWT to forward is read
	// from the member named by Config.JWTClaim.
	FormatJSON Format = "json"
)

// ClientAuth selects how the gateway authenticates itself to the
// introspection endpoint (RFC 6749 §2.3.1).
type ClientAuth string

const (
	// ClientSecretBasic sends the credentials in an HTTP Basic
	// Authorization header (the RFC 6749 default, and ours).
	ClientSecretBasic ClientAuth = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret as form fields.
	ClientSecretPost ClientAuth = "client_secret_post"
)

// Defaults applied by [New] to zero-valued fields.
const (
	// DefaultTimeout bounds a whole introspection call, body included.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBodyBytes caps the AS response body; introspection replies
	// are a few KiB, so 1 MiB is generous while bounding memory.
	DefaultMaxBodyBytes int64 = 1 << 20
)

// Config configures a [Client]. Zero values get the documented defaults.
type Config struct {
	// Endpoint is the introspection endpoint URL (required). It must be
	// https, or http only when the host is loopback (127.0.0.0/8, ::1,
	// "localhost"), so credentials and tokens never cross a network in clear.
	Endpoint string
	// ClientID is the gateway's client identifier at the AS (required).
	ClientID string
	// ClientSecret is the gateway's client secret at the AS (required).
	ClientSecret string
	// ClientAuth selects the client authentication method; default
	// ClientSecretBasic.
	ClientAuth ClientAuth
	// Format selects the response format; default FormatJWT.
	Format Format
	// JWTClaim names the member of a FormatJSON reply holding the JWT to
	// forward upstream (required for FormatJSON, not allowed otherwise).
	JWTClaim string
	// Issuer, when set, is the expected "iss" of every JWT from the AS, and
	// of the JSON reply's "iss" when the reply has one.
	Issuer string
	// Verifier, when set, signature-verifies every JWT from the AS before it
	// is trusted or forwarded.
	Verifier *JWKSVerifier
	// Timeout bounds the whole AS call including reading the body and any
	// JWKS fetch needed to verify the reply; default DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes caps the AS response body; a larger body is a
	// KindBadResponse. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HTTPClient, when set, is used for every AS call. The default is a
	// client of our own with verified TLS (1.2 minimum) that does not follow
	// redirects: a redirected POST would resend the credentials elsewhere.
	HTTPClient *http.Client
}

// Client introspects tokens at one AS. It is immutable after [New] and safe
// for concurrent use; create one per configuration and reuse it so
// connections to the AS are pooled.
type Client struct {
	endpoint   string
	clientID   string
	secret     string
	auth       ClientAuth
	format     Format
	jwtClaim   string
	issuer     string
	verifier   *JWKSVerifier
	timeout    time.Duration
	maxBody    int64
	httpClient *http.Client
	ownClient  bool
	accept     string
	basicAuth  string // precomputed Authorization header value (basic auth)
	retryDelay time.Duration
}

// New validates cfg, applies defaults and returns a Client. It performs no
// network I/O, so it is safe to call while provisioning or validating a
// configuration offline.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("endpoint is required")
	}
	if err := CheckURL(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("client_id is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("client_secret is required")
	}

	c := &Client{
		endpoint:   cfg.Endpoint,
		clientID:   cfg.ClientID,
		secret:     cfg.ClientSecret,
		auth:       cfg.ClientAuth,
		format:     cfg.Format,
		jwtClaim:   cfg.JWTClaim,
		issuer:     cfg.Issuer,
		verifier:   cfg.Verifier,
		timeout:    cfg.Timeout,
		maxBody:    cfg.MaxBodyBytes,
		httpClient: cfg.HTTPClient,
		retryDelay: 50 * time.Millisecond,
	}

	switch c.auth {
	case "":
		c.auth = ClientSecretBasic
	case ClientSecretBasic, ClientSecretPost:
	default:
		return nil, fmt.Errorf("client_auth %q is not supported (want %q or %q)", c.auth, ClientSecretBasic, ClientSecretPost)
	}
	if c.auth == ClientSecretBasic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before being
		// joined, so a ':' in the client id cannot split it.
		creds := url.QueryEscape(c.clientID) + ":" + url.QueryEscape(c.secret)
		c.basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(creds))
	}

	switch c.format {
	case "":
		c.format = FormatJWT
	case FormatJWT, FormatJSON:
	default:
		return nil, fmt.Errorf("format %q is not supported (want %q or %q)", c.format, FormatJWT, FormatJSON)
	}
	switch c.format {
	case FormatJWT:
		if c.jwtClaim != "" {
			return nil, fmt.Errorf("jwt_claim is only used with format %q", FormatJSON)
		}
		c.accept = "application/jwt"
	case FormatJSON:
		if c.jwtClaim == "" {
			return nil, fmt.Errorf("jwt_claim is required with format %q", FormatJSON)
		}
		c.accept = "application/json"
	}

	switch {
	case c.timeout < 0:
		return nil, fmt.Errorf("timeout must not be negative, got %s", c.timeout)
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxBody < 0:
		return nil, fmt.Errorf("max_body_bytes must not be negative, got %d", c.maxBody)
	case c.maxBody == 0:
		c.maxBody = DefaultMaxBodyBytes
	}

	if c.httpClient == nil {
		c.httpClient = newDefaultHTTPClient(noRedirects)
		c.ownClient = true
	}
	return c, nil
}

// CloseIdleConnections closes idle connections of the Client's own HTTP
// client (call it when the configuration is torn down). A caller-supplied
// Config.HTTPClient is left alone: its owner manages it.
func (c *Client) CloseIdleConnections() {
	if c.ownClient {
		c.httpClient.CloseIdleConnections()
	}
}

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
