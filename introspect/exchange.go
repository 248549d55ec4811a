package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// RFC 8693 identifiers.
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is the RFC 8693 token type of an OAuth access
	// token (the subject token's type, and a possible requested type).
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	// TokenTypeJWT is the RFC 8693 token type of a JWT, the default
	// requested type.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
)

// ExchangeConfig configures an [Exchanger]: RFC 8693 token exchange of the
// client's opaque token for a JWT to forward upstream. Zero values get the
// same defaults as [Config].
type ExchangeConfig struct {
	// Endpoint is the AS token endpoint (required; https, or http on a
	// loopback host, as for Config.Endpoint).
	Endpoint string
	// ClientID is the gateway's client identifier at the AS (required).
	ClientID string
	// ClientSecret is the gateway's client secret; required with the
	// secret methods, refused with the others (as Config.ClientSecret).
	ClientSecret string
	// ClientAuth selects the client authentication method; default
	// ClientSecretBasic.
	ClientAuth ClientAuth
	// AssertionKey signs PrivateKeyJWT assertions (as Config.AssertionKey).
	AssertionKey jwk.Key
	// AssertionAudience is the "aud" of PrivateKeyJWT assertions; default
	// Endpoint.
	AssertionAudience string
	// Resource is sent as "resource" (RFC 8707; the route's resource);
	// optional, an absolute URI when set.
	Resource string
	// Audience is sent as "audience"; optional.
	Audience string
	// RequestedTokenType is sent as "requested_token_type": TokenTypeJWT
	// (the default) or TokenTypeAccessToken.
	RequestedTokenType string
	// Scope is sent as "scope"; optional.
	Scope string
	// Verifier, when set, verifies the issued JWT's signature (recommended).
	Verifier *JWKSVerifier
	// Issuer, when set, is the required "iss" of the issued JWT.
	Issuer string
	// Timeout bounds a whole exchange, body and JWKS fetch included;
	// default DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes caps the AS response body; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HTTPClient is used for every call (as Config.HTTPClient); TLSClientAuth
	// requires one presenting the client certificate.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Exchanger exchanges opaque access tokens for JWTs at one AS token
// endpoint (RFC 8693). It is immutable after [NewExchanger] and safe for
// concurrent use.
type Exchanger struct {
	poster
	requested string
	resource  string
	audience  string
	scope     string
	verifier  *JWKSVerifier
	issuer    string
}

// Exchanged is the outcome of a successful token exchange.
type Exchanged struct {
	// JWT is the issued token, a compact JWS, to forward upstream.
	JWT string
	// ExpiresAt is the earlier of now + expires_in and the JWT's "exp"
	// (either may be absent); zero when both are.
	ExpiresAt time.Time
	// Claims are read from the issued JWT (sub, client_id, scope, aud, exp,
	// nbf, iat, iss); Active is true, JWT and JWTExpiresAt are set, MaxAge
	// is -1.
	Claims *Result
}

// NewExchanger validates cfg, applies defaults and returns an Exchanger. It
// performs no network I/O.
func NewExchanger(cfg ExchangeConfig) (*Exchanger, error) {
	if err := checkEndpoint("token exchange endpoint", cfg.Endpoint); err != nil {
		return nil, err
	}
	e := &Exchanger{
		requested: cfg.RequestedTokenType,
		resource:  cfg.Resource,
		audience:  cfg.Audience,
		scope:     cfg.Scope,
		verifier:  cfg.Verifier,
		issuer:    cfg.Issuer,
	}
	switch e.requested {
	case "":
		e.requested = TokenTypeJWT
	case TokenTypeJWT, TokenTypeAccessToken:
	default:
		return nil, fmt.Errorf("requested_token_type %q is not supported (want %q or %q)", e.requested, TokenTypeJWT, TokenTypeAccessToken)
	}
	if e.resource != "" {
		if u, err := url.Parse(e.resource); err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, errors.New("token exchange resource must be an absolute uri without a fragment")
		}
	}
	p, err := newPoster(cfg.posterConfig())
	if err != nil {
		return nil, err
	}
	e.poster = *p
	return e, nil
}

// posterConfig returns the settings cfg shares with [Config].
func (cfg ExchangeConfig) posterConfig() posterConfig {
	return posterConfig{
		name:       "token exchange",
		endpoint:   cfg.Endpoint,
		accept:     "application/json",
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

// CloseIdleConnections closes idle connections of the Exchanger's own HTTP
// client; a caller-supplied ExchangeConfig.HTTPClient is left alone.
func (e *Exchanger) CloseIdleConnections() { e.closeIdle() }

// Exchange presents subjectToken (the client's opaque access token) to the
// token endpoint and returns the issued JWT.
//
// traceparent is forwarded only when valid, as in [Client.Introspect]. The
// whole call is bounded by ctx and the configured timeout, and a failed
// connection is retried once. Failures are *Error: KindRejected when the AS
// refused the subject token (400 invalid_request, invalid_target or
// invalid_grant), KindUnavailable when it could not be reached, timed out or
// answered 503, and KindBadResponse for anything else (the gateway's own
// credentials refused, other statuses, a reply that is not what was asked
// for, a JWT that does not verify). An empty subject token is a caller bug
// and returns a plain error.
func (e *Exchanger) Exchange(ctx context.Context, subjectToken, traceparent string) (*Exchanged, error) {
	if subjectToken == "" {
		return nil, errors.New("token exchange: empty subject token")
	}
	form := url.Values{
		"grant_type":           {grantTypeTokenExchange},
		"subject_token":        {subjectToken},
		"subject_token_type":   {TokenTypeAccessToken},
		"requested_token_type": {e.requested},
	}
	if e.resource != "" {
		form.Set("resource", e.resource)
	}
	if e.audience != "" {
		form.Set("audience", e.audience)
	}
	if e.scope != "" {
		form.Set("scope", e.scope)
	}
	return roundTrip(ctx, &e.poster, form, traceparent, e.handleReply)
}

// handleReply dispatches the token endpoint's reply on its status.
func (e *Exchanger) handleReply(ctx context.Context, resp *http.Response) (*Exchanged, error) {
	switch resp.StatusCode {
	case http.StatusOK:
		return e.handleIssued(ctx, resp)
	case http.StatusBadRequest:
		return nil, e.handleRefusal(ctx, resp)
	default:
		return nil, e.statusError(resp)
	}
}
