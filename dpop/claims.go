package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"math"
	"strconv"
	"time"
)

// maxJTILen bounds the jti. RFC 9449 §4.2 asks for at least 96 bits of
// randomness, which clients send as 16 to 43 characters; 256 bytes is
// ample, and bounds what a proof can make the gateway hash and store.
const maxJTILen = 256

// maxIAT is the largest iat accepted as a number at all (9999-12-31):
// beyond it a NumericDate no longer converts to a time.Time exactly, and
// it is in the future anyway.
const maxIAT = 253402300799

// checkClaims checks the payload's claims (RFC 9449 §4.3 points 2 and 7 to
// 11) in a fixed order, the nonce last so that use_dpop_nonce is only
// returned for a proof that is otherwise acceptable, and fills p's JTI and
// IssuedAt. wantURI is the request URL in normal form.
func (v *Verifier) checkClaims(c object, req Request, wantURI string, now time.Time, p *Proof) *Error {
	jti, _, _ := c.str("jti")
	if jti == "" || len(jti) > maxJTILen {
		return invalid(reasonJTI)
	}
	if htm, _, _ := c.str("htm"); htm != req.Method {
		return invalid(reasonHTM)
	}
	htu, _, _ := c.str("htu")
	gotURI, ok := normalizeURI(htu)
	if !ok {
		return invalid(reasonHTUInvalid)
	}
	if gotURI != wantURI {
		return invalid(reasonHTU)
	}
	iat, ok := numericDate(c["iat"])
	switch {
	case !ok:
		return invalid(reasonIATInvalid)
	case iat.Before(now.Add(-v.maxAge)):
		return invalid(reasonIATOld)
	case iat.After(now.Add(v.leeway)):
		return invalid(reasonIATFuture)
	}
	if req.AccessToken != "" {
		ath, present, _ := c.str("ath")
		if !present {
			return invalid(reasonATHMissing)
		}
		if !athMatches(ath, req.AccessToken) {
			return invalid(reasonATH)
		}
	}
	if v.nonces != nil {
		nonce, present, _ := c.str("nonce")
		if !present {
			return &Error{Code: CodeUseNonce, Reason: reasonNonceMissing}
		}
		if !v.nonces.valid(nonce, now, v.leeway) {
			return &Error{Code: CodeUseNonce, Reason: reasonNonce}
		}
	}
	p.JTI, p.IssuedAt = jti, iat
	return nil
}

// numericDate parses an RFC 7519 NumericDate: a JSON number of seconds
// since the epoch, possibly with a fraction. Negative values, exponents
// beyond the year 9999 and anything but a number are refused.
func numericDate(raw []byte) (time.Time, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return time.Time{}, false // also refuses null, strings and "-1"
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f > maxIAT {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// athMatches reports whether ath is base64url(SHA-256(token)), the access
// token hash of RFC 9449 §4.2, comparing in constant time so that the
// comparison reveals nothing about the expected value.
func athMatches(ath, token string) bool {
	sum := sha256.Sum256([]byte(token))
	var want [43]byte // RawURLEncoding of 32 bytes
	base64.RawURLEncoding.Encode(want[:], sum[:])
	return subtle.ConstantTimeCompare([]byte(ath), want[:]) == 1
}
