package introspect

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Client assertion parameters (RFC 7523 §2.2).
const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionLifetime is exp - iat of every assertion: long enough for
	// clock differences and the request's flight, short enough that a
	// captured assertion is soon useless (its jti is single-use anyway).
	assertionLifetime = 60 * time.Second
)

// authConfig is the client authentication part of a configuration.
type authConfig struct {
	method     ClientAuth
	clientID   string
	secret     string
	key        jwk.Key
	audience   string // "" = endpoint
	endpoint   string
	httpClient *http.Client
	now        func() time.Time
}

// authenticator adds the gateway's client authentication to one request to
// the AS: a header (client_secret_basic) or form fields (the others). It is
// shared by introspection and token exchange, immutable and safe for
// concurrent use.
type authenticator struct {
	method   ClientAuth
	clientID string
	secret   string
	basic    string // precomputed Authorization value for client_secret_basic

	// fixedForm and fixedHeader are what apply adds for the methods whose
	// fields never change (all but private_key_jwt), encoded once so that
	// a request does not redo it: fixedForm as "name=value&…&" to put
	// before an encoded form, fixedHeader as the Authorization header's
	// value.
	fixedForm   string
	fixedHeader []string

	// private_key_jwt
	alg      jwa.SignatureAlgorithm
	signer   any // the raw private key
	kid      string
	audience string
	now      func() time.Time
}

// newAuthenticator validates ac. Every method needs a client_id; each
// method refuses the settings of the others, because a secret or key that
// is configured but never used is a mistake worth reporting.
func newAuthenticator(ac authConfig) (*authenticator, error) {
	if ac.clientID == "" {
		return nil, errors.New("client_id is required")
	}
	if ac.method == "" {
		ac.method = ClientSecretBasic
	}
	if ac.now == nil {
		ac.now = time.Now
	}
	a := &authenticator{method: ac.method, clientID: ac.clientID, now: ac.now}

	switch ac.method {
	case ClientSecretBasic, ClientSecretPost:
		if ac.secret == "" {
			return nil, errors.New("client_secret is required")
		}
		if err := refuseAssertionSettings(ac); err != nil {
			return nil, err
		}
		a.secret = ac.secret
		if ac.method == ClientSecretBasic {
			// RFC 6749 §2.3.1: both parts are form-urlencoded before being
			// joined, so a ':' in the client id cannot split it.
			creds := url.QueryEscape(ac.clientID) + ":" + url.QueryEscape(ac.secret)
			a.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(creds))
		}
	case PrivateKeyJWT:
		if ac.secret != "" {
			return nil, fmt.Errorf("client_secret is not used with client_auth %q", ac.method)
		}
		if ac.key == nil {
			return nil, fmt.Errorf("client_auth %q needs an assertion key", ac.method)
		}
		alg, raw, err := signingKey(ac.key)
		if err != nil {
			return nil, fmt.Errorf("assertion key: %w", err)
		}
		a.alg, a.signer, a.kid = alg, raw, ac.key.KeyID()
		a.audience = ac.audience
		if a.audience == "" {
			a.audience = ac.endpoint
		}
		// Sign once now so a key jwx cannot use fails at provisioning, not
		// on the first request.
		if _, err := a.assertion(); err != nil {
			return nil, err
		}
	case TLSClientAuth:
		if ac.secret != "" {
			return nil, fmt.Errorf("client_secret is not used with client_auth %q", ac.method)
		}
		if err := refuseAssertionSettings(ac); err != nil {
			return nil, err
		}
		if !presentsClientCert(ac.httpClient) {
			return nil, fmt.Errorf("client_auth %q needs an http client that presents the client certificate (see NewTLSClientAuthHTTPClient)", ac.method)
		}
	default:
		return nil, fmt.Errorf("client_auth %q is not supported (want %q, %q, %q or %q)",
			ac.method, ClientSecretBasic, ClientSecretPost, PrivateKeyJWT, TLSClientAuth)
	}
	if a.method != PrivateKeyJWT {
		form, header := url.Values{}, http.Header{}
		if err := a.apply(form, header); err != nil {
			return nil, err
		}
		if len(form) > 0 {
			a.fixedForm = form.Encode() + "&"
		}
		a.fixedHeader = header["Authorization"]
	}
	return a, nil
}

// encoded returns what apply would add, encoded: form fields as
// "name=value&…&" to put before an encoded form (the client_* names then
// come first, where url.Values.Encode's sorting put them next to the
// introspection request's token fields), and the Authorization header's
// value (nil for none). Only private_key_jwt does work here, a
// fresh assertion per call; the others answer what New encoded.
func (a *authenticator) encoded() (form string, authorization []string, err error) {
	if a.method != PrivateKeyJWT {
		return a.fixedForm, a.fixedHeader, nil
	}
	f := make(url.Values, 3)
	if err := a.apply(f, nil); err != nil {
		return "", nil, err
	}
	return f.Encode() + "&", nil, nil
}

func refuseAssertionSettings(ac authConfig) error {
	if ac.key != nil || ac.audience != "" {
		return fmt.Errorf("assertion key and audience are only used with client_auth %q", PrivateKeyJWT)
	}
	return nil
}

// presentsClientCert reports whether c can present a client certificate.
// A transport other than *http.Transport is trusted to do so: it cannot be
// inspected.
func presentsClientCert(c *http.Client) bool {
	if c == nil {
		return false
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		return c.Transport != nil
	}
	tc := tr.TLSClientConfig
	return tc != nil && (len(tc.Certificates) > 0 || tc.GetClientCertificate != nil)
}

// apply adds the client authentication to a request's form and header
// (header may be nil with private_key_jwt, which sets none).
func (a *authenticator) apply(form url.Values, header http.Header) error {
	switch a.method {
	case ClientSecretBasic:
		header.Set("Authorization", a.basic)
	case ClientSecretPost:
		form.Set("client_id", a.clientID)
		form.Set("client_secret", a.secret)
	case PrivateKeyJWT:
		assertion, err := a.assertion()
		if err != nil {
			return err
		}
		// RFC 7521 §4.2: client_id is optional with an assertion; sent
		// anyway, since some servers look the client up by it.
		form.Set("client_id", a.clientID)
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", assertion)
	case TLSClientAuth:
		form.Set("client_id", a.clientID)
	}
	return nil
}

// assertion returns a fresh RFC 7523 client assertion: iss = sub =
// client_id, aud, iat, exp = iat + 60s and a random 128-bit jti.
func (a *authenticator) assertion() (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", errors.New("generating the client assertion id failed")
	}
	now := a.now()
	payload, err := json.Marshal(map[string]any{
		"iss": a.clientID,
		"sub": a.clientID,
		"aud": a.audience,
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	})
	if err != nil {
		return "", errors.New("encoding the client assertion failed")
	}
	hdr := jws.NewHeaders()
	if a.kid != "" {
		if err := hdr.Set(jws.KeyIDKey, a.kid); err != nil {
			return "", errors.New("setting the client assertion kid failed")
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(a.alg, a.signer, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		// jwx errors may describe the key; keep only that signing failed.
		return "", errors.New("signing the client assertion failed")
	}
	return string(out), nil
}
