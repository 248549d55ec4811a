package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"go.uber.org/zap"

	"github.com/phantomgate/caddy-phantom-token/introspect"
	"github.com/phantomgate/caddy-phantom-token/signer"
)

// defaultJWKSPath is where a signing gateway publishes its keys.
const defaultJWKSPath = "/.well-known/jwks.json"

// clientAuthSettings is how the gateway authenticates to the AS, shared by
// introspection and token exchange.
type clientAuthSettings struct {
	assertionKey jwk.Key      // private_key_jwt
	httpClient   *http.Client // tls_client_auth or tls_ca; nil means the default client
	timeout      time.Duration
}

// provisionClientAuth loads the key or certificate files client_auth needs.
func (h *Handler) provisionClientAuth(timeout time.Duration) (clientAuthSettings, error) {
	auth := clientAuthSettings{timeout: timeout}
	var err error
	switch introspect.ClientAuth(h.ClientAuth) {
	case introspect.PrivateKeyJWT:
		if auth.assertionKey, err = introspect.LoadPrivateKey(h.ClientAssertionKey); err != nil {
			return auth, fmt.Errorf("client_assertion_key: %v", err)
		}
	case introspect.TLSClientAuth:
		if auth.httpClient, err = introspect.NewTLSClientAuthHTTPClient(h.TLSClientCert, h.TLSClientKey, h.TLSCA); err != nil {
			return auth, fmt.Errorf("tls_client_cert, tls_client_key, tls_ca: %v", err)
		}
		return auth, nil
	}
	if h.TLSCA != "" {
		// An AS behind a private CA, with any other client_auth.
		if auth.httpClient, err = introspect.NewCAHTTPClient(h.TLSCA); err != nil {
			return auth, fmt.Errorf("tls_ca: %v", err)
		}
	}
	return auth, nil
}

// validateClientAuth checks that each client_auth method has what it needs
// and nothing that belongs to another method, so a leftover setting never
// silently does nothing.
func (h *Handler) validateClientAuth() error {
	method := h.ClientAuth
	if method == "" {
		method = string(introspect.ClientSecretBasic)
	}
	usesSecret := method == string(introspect.ClientSecretBasic) || method == string(introspect.ClientSecretPost)
	switch {
	case usesSecret && h.ClientSecret == "":
		return fmt.Errorf("client_secret: required with client_auth %s", method)
	case !usesSecret && h.ClientSecret != "":
		return fmt.Errorf("client_secret: not used with client_auth %s; remove it", method)
	case method == string(introspect.PrivateKeyJWT) && h.ClientAssertionKey == "":
		return fmt.Errorf("client_assertion_key: required with client_auth private_key_jwt")
	case method != string(introspect.PrivateKeyJWT) && (h.ClientAssertionKey != "" || h.ClientAssertionAudience != ""):
		return fmt.Errorf("client_assertion_key, client_assertion_audience: only valid with client_auth private_key_jwt")
	case method == string(introspect.TLSClientAuth) && (h.TLSClientCert == "" || h.TLSClientKey == ""):
		return fmt.Errorf("tls_client_cert, tls_client_key: required with client_auth tls_client_auth")
	case method != string(introspect.TLSClientAuth) && (h.TLSClientCert != "" || h.TLSClientKey != ""):
		return fmt.Errorf("tls_client_cert, tls_client_key: only valid with client_auth tls_client_auth")
	}
	return nil
}

// validateJWTSource checks that the upstream JWT has exactly one source
// (DESIGN §4): the jwt format forwards the AS's body; json and rfc9701
// need one of jwt_claim, token_exchange or sign.
func (h *Handler) validateJWTSource(format string) error {
	sources := 0
	for _, set := range []bool{h.JWTClaim != "", h.TokenExchange != nil, h.Sign != nil} {
		if set {
			sources++
		}
	}
	switch {
	case format == string(introspect.FormatJWT) && sources > 0:
		return fmt.Errorf("jwt_claim, token_exchange, sign: not valid with introspection_format jwt, where the AS's reply is the JWT")
	case format != string(introspect.FormatJWT) && sources == 0:
		return fmt.Errorf("introspection_format %s needs a JWT source: jwt_claim <name>, token_exchange { … } or sign { … }", format)
	case sources > 1:
		return fmt.Errorf("jwt_claim, token_exchange, sign: configure exactly one JWT source")
	}
	if te := h.TokenExchange; te != nil {
		if te.Endpoint == "" {
			return fmt.Errorf("token_exchange.endpoint: required")
		}
		if err := introspect.CheckURL(te.Endpoint); err != nil {
			return fmt.Errorf("token_exchange.endpoint: %v", err)
		}
	}
	if s := h.Sign; s != nil {
		if s.Issuer == "" {
			return fmt.Errorf("sign.issuer: required")
		}
		if h.Resource == "" {
			return fmt.Errorf("sign: requires resource (the audience of the JWTs the gateway signs)")
		}
		switch {
		case s.Key == "" && !s.EphemeralKey:
			return fmt.Errorf("sign.key: required (a PEM or JWK private key file); ephemeral_key is for demos only")
		case s.Key != "" && s.EphemeralKey:
			return fmt.Errorf("sign: key and ephemeral_key are mutually exclusive")
		case s.PreviousKey != "" && s.EphemeralKey:
			return fmt.Errorf("sign.previous_key: not valid with ephemeral_key")
		}
		if s.Lifetime < 0 {
			return fmt.Errorf("sign.lifetime: must be positive")
		}
		if s.JWKSPath != "" {
			if err := checkMetadataPath(s.JWKSPath); err != nil {
				return fmt.Errorf("sign.jwks_path: %v", err)
			}
		}
	}
	return nil
}

// provisionSigner loads the signing keys. Reading key files is local I/O,
// allowed at provisioning; nothing touches the network.
func (h *Handler) provisionSigner() error {
	s := h.Sign
	var key, prev jwk.Key
	var err error
	if s.EphemeralKey {
		if key, err = signer.GenerateEphemeralKey(); err != nil {
			return fmt.Errorf("sign.ephemeral_key: %v", err)
		}
		h.logger.Warn("sign: using an ephemeral signing key; JWTs stop verifying when Caddy restarts, and instances do not share it (demos only)")
	} else if key, err = introspect.LoadPrivateKey(s.Key); err != nil {
		return fmt.Errorf("sign.key: %v", err)
	}
	if s.PreviousKey != "" {
		if prev, err = introspect.LoadPrivateKey(s.PreviousKey); err != nil {
			return fmt.Errorf("sign.previous_key: %v", err)
		}
	}
	h.signer, err = signer.New(signer.Config{
		Issuer:   s.Issuer,
		Key:      key,
		Previous: prev,
		Lifetime: time.Duration(s.Lifetime),
		Now:      func() time.Time { return now() },
	})
	if err != nil {
		return fmt.Errorf("sign: %v", err)
	}
	h.jwksPath = defaultJWKSPath
	if s.JWKSPath != "" {
		h.jwksPath = escapedPath(s.JWKSPath)
	}
	return nil
}

// provisionExchanger sets up RFC 8693 token exchange with the gateway's
// own client authentication.
func (h *Handler) provisionExchanger(auth clientAuthSettings) error {
	te := h.TokenExchange
	ex, err := introspect.NewExchanger(introspect.ExchangeConfig{
		Endpoint:           te.Endpoint,
		ClientID:           h.ClientID,
		ClientSecret:       h.ClientSecret,
		ClientAuth:         introspect.ClientAuth(h.ClientAuth),
		AssertionKey:       auth.assertionKey,
		AssertionAudience:  h.ClientAssertionAudience,
		Resource:           h.Resource,
		Audience:           te.Audience,
		RequestedTokenType: te.RequestedTokenType,
		Scope:              te.Scope,
		Verifier:           h.verifier,
		Issuer:             h.Issuer,
		Timeout:            auth.timeout,
		HTTPClient:         auth.httpClient,
		Now:                func() time.Time { return now() },
	})
	if err != nil {
		return fmt.Errorf("token_exchange: %v", err)
	}
	h.exchanger = ex
	return nil
}

// upstreamJWT obtains the JWT to forward for an active introspection
// result, from the configured source, and returns it with its expiry. A
// nil entry with a nil error means the AS refused to exchange the token:
// the request is treated as carrying an invalid token.
func (h *Handler) upstreamJWT(ctx context.Context, res *introspect.Result, token, traceparent string) (string, time.Time, error) {
	switch {
	case h.signer != nil:
		jwt, exp, err := h.signer.Sign(signer.Claims{
			Subject: res.Subject, ClientID: res.ClientID, Scope: res.Scope,
			Audience: []string{h.Resource}, ExpiresAt: res.ExpiresAt,
			JKT: res.JKT, X5TS256: res.X5TS256,
		})
		if errors.Is(err, signer.ErrExpired) {
			return "", time.Time{}, errExpired
		}
		if err != nil {
			// The claims are missing what an RFC 9068 JWT needs: the AS
			// vouched for a token the gateway cannot represent.
			return "", time.Time{}, &introspect.Error{Kind: introspect.KindBadResponse, Err: fmt.Errorf("signing the upstream JWT: %w", err)}
		}
		return jwt, exp, nil
	case h.exchanger != nil:
		ex, err := h.exchanger.Exchange(ctx, token, traceparent)
		if err != nil {
			return "", time.Time{}, err
		}
		return ex.JWT, ex.ExpiresAt, nil
	}
	return res.JWT, res.JWTExpiresAt, nil
}

// errExpired reports that the token's lifetime ended before a JWT could be
// made for it: the request carries an expired token.
var errExpired = errors.New("the token expired before its upstream JWT was made")

// isRejected reports whether the AS refused the token during exchange.
func isRejected(err error) bool {
	var ie *introspect.Error
	return errors.As(err, &ie) && ie.Kind == introspect.KindRejected
}

// serveJWKS answers a request for the gateway's public keys.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("jwks: only GET and HEAD are allowed"))
	}
	body := h.signer.JWKS()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/jwk-set+json")
	hdr.Set("Cache-Control", "public, max-age=300")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
	return nil
}

// logRejectedExchange records, at debug level, that the AS refused to
// exchange a token it had called active.
func (h *Handler) logRejectedExchange(token string, err error) {
	if c := h.logger.Check(zap.DebugLevel, "token exchange refused the subject token"); c != nil {
		c.Write(zap.String("token_fingerprint", fingerprint(token)), zap.Error(err))
	}
}
