package introspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome of one introspection. It is plain data: the caller
// authorizes (exp, nbf, audience, scopes) on every request, cache hits
// included, so Introspect does not judge the claims' values.
type Result struct {
	// Active is true only when the AS said so unambiguously: a JWT body in
	// FormatJWT, "active": true (the boolean) in FormatJSON, and the same
	// inside the verified "token_introspection" member in FormatRFC9701.
	Active bool
	// Subject is "sub" (may be absent, e.g. client-credentials tokens).
	Subject string
	// ClientID is "client_id".
	ClientID string
	// Scope is "scope", space-separated as received; a JSON array of
	// strings is joined with single spaces.
	Scope string
	// Issuer is "iss".
	Issuer string
	// Audience is "aud": a string becomes a one-element slice, an array is
	// copied, an empty array gives an empty slice, absent gives nil.
	Audience []string
	// ExpiresAt is "exp" (zero time when absent).
	ExpiresAt time.Time
	// NotBefore is "nbf" (zero time when absent).
	NotBefore time.Time
	// IssuedAt is "iat" (zero time when absent).
	IssuedAt time.Time
	// JWT is the access-token JWT to forward upstream; set only when Active,
	// and, in FormatJSON and FormatRFC9701, only when Config.JWTClaim is set
	// (never the RFC 9701 response JWT itself).
	JWT string
	// JWTExpiresAt is the forwarded JWT's "exp" (zero time when absent); in
	// FormatJWT it equals ExpiresAt.
	JWTExpiresAt time.Time
	// MaxAge is the reply's Cache-Control max-age, -1 when absent. It caps
	// how long the result may be cached (DESIGN §6).
	MaxAge time.Duration
	// JKT is "cnf"."jkt": the RFC 7638 thumbprint of the key a DPoP-bound
	// token is bound to (RFC 9449 §6); "" when absent.
	JKT string
	// X5TS256 is "cnf"."x5t#S256": the SHA-256 thumbprint of the client
	// certificate a certificate-bound token is bound to (RFC 8705 §3.1);
	// "" when absent.
	X5TS256 string
	// TokenType is "token_type" (RFC 7662 §2.2), e.g. "Bearer" or "DPoP".
	TokenType string
}

// claims wraps a decoded JSON object and reads registered claims with strict
// types: a claim of the wrong type is a malformed AS reply, because guessing
// what the AS meant is how authorization bugs happen. A JSON null is treated
// as absent.
type claims map[string]json.RawMessage

// raw returns the member's raw JSON, or nil when absent or null.
func (c claims) raw(name string) []byte {
	v, ok := c[name]
	if !ok {
		return nil
	}
	v = bytes.TrimSpace(v)
	if string(v) == "null" {
		return nil
	}
	return v
}

func (c claims) str(name string) (string, error) {
	v := c.raw(name)
	if v == nil {
		return "", nil
	}
	var s string
	if v[0] != '"' || unmarshalString(v, &s) != nil {
		return "", fmt.Errorf("claim %q is not a string", name)
	}
	return s, nil
}

// scope accepts the RFC 7662 space-separated string, and also an array of
// strings (some servers emit one), joined with spaces.
func (c claims) scope() (string, error) {
	v := c.raw("scope")
	if v == nil {
		return "", nil
	}
	switch v[0] {
	case '"':
		return c.str("scope")
	case '[':
		var list []string
		if err := unmarshalStrings(v, &list); err != nil {
			return "", fmt.Errorf("claim %q is not a string or an array of strings", "scope")
		}
		return strings.Join(list, " "), nil
	default:
		return "", fmt.Errorf("claim %q is not a string or an array of strings", "scope")
	}
}

func (c claims) audience() ([]string, error) {
	v := c.raw("aud")
	if v == nil {
		return nil, nil
	}
	switch v[0] {
	case '"':
		s, err := c.str("aud")
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	case '[':
		list := []string{}
		if err := unmarshalStrings(v, &list); err != nil {
			return nil, fmt.Errorf("claim %q is not a string or an array of strings", "aud")
		}
		return list, nil
	default:
		return nil, fmt.Errorf("claim %q is not a string or an array of strings", "aud")
	}
}

// maxNumericDate is 9999-12-31T23:59:59Z: later (or negative) NumericDates
// are nonsense that would overflow time arithmetic downstream.
const maxNumericDate = 253402300799

// numericDate reads an RFC 7519 NumericDate: a JSON number of seconds since
// the epoch, integer or fractional. Strings and other types are rejected.
func (c claims) numericDate(name string) (time.Time, error) {
	v := c.raw(name)
	if v == nil {
		return time.Time{}, nil
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return time.Time{}, fmt.Errorf("claim %q is not a number", name)
	}
	s := string(v)
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > maxNumericDate {
			return time.Time{}, fmt.Errorf("claim %q is out of range", name)
		}
		return time.Unix(n, 0), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("claim %q is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
}

// fill reads the registered claims the gateway uses into r.
func (c claims) fill(r *Result) error {
	var err error
	if r.Subject, err = c.str("sub"); err != nil {
		return err
	}
	if r.ClientID, err = c.str("client_id"); err != nil {
		return err
	}
	if r.Issuer, err = c.str("iss"); err != nil {
		return err
	}
	if r.Scope, err = c.scope(); err != nil {
		return err
	}
	if r.Audience, err = c.audience(); err != nil {
		return err
	}
	if r.ExpiresAt, err = c.numericDate("exp"); err != nil {
		return err
	}
	if r.NotBefore, err = c.numericDate("nbf"); err != nil {
		return err
	}
	if r.IssuedAt, err = c.numericDate("iat"); err != nil {
		return err
	}
	if r.TokenType, err = c.str("token_type"); err != nil {
		return err
	}
	if r.JKT, r.X5TS256, err = c.confirmation(); err != nil {
		return err
	}
	return nil
}
