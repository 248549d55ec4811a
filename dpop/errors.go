package dpop

// Error codes of RFC 9449 §7.1 and §12.2, for the WWW-Authenticate "error"
// parameter of the 401 that answers a failed [Verifier.Verify].
const (
	// CodeInvalidProof means the proof is missing, malformed, badly signed,
	// not for this request, stale or replayed.
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeUseNonce means the proof is otherwise valid but lacks a current
	// server nonce: answer with a fresh [NonceSource.Nonce] in the
	// DPoP-Nonce header so that the client can retry (RFC 9449 §9).
	CodeUseNonce = "use_dpop_nonce"
)

// Error is the error [Verifier.Verify] returns for every failure caused by
// the request (as opposed to a malformed [Request], which is the caller's
// fault). Its fields never contain the proof, the access token, the jti or
// any claim value, so the whole error can be logged, and Reason can be
// sent back as the error_description.
type Error struct {
	// Code is CodeInvalidProof or CodeUseNonce.
	Code string
	// Reason is a short fixed description of the failed check.
	Reason string
	// Replay is true when the proof was valid but its jti had been used
	// already, so that metrics can tell replays from other failures.
	Replay bool

	// cause is the replay cache's error, kept for errors.Is/As (a Redis
	// timeout, a cancelled context) and never printed: a cache
	// implementation's message is not ours to vouch for.
	cause error
}

// Error returns "dpop: <code>: <reason>".
func (e *Error) Error() string {
	return "dpop: " + e.Code + ": " + e.Reason
}

// Unwrap returns the replay cache's error when the replay check could not
// be made, nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// Reasons, one per check. They are constants so that an error can only
// ever carry one of them: nothing from the request reaches a message.
const (
	reasonHeaderCount   = "expected exactly one DPoP header"
	reasonTooLarge      = "proof is too large"
	reasonNotJWS        = "proof is not a compact JWS"
	reasonHeader        = "proof header is not a JSON object"
	reasonTyp           = "typ is not dpop+jwt"
	reasonAlg           = "alg is missing or not allowed"
	reasonCrit          = "proof has critical header parameters, none are supported"
	reasonKeyReference  = "proof refers to a key by reference, only an embedded jwk is accepted"
	reasonJWKMissing    = "jwk is missing or not a JSON object"
	reasonJWKPrivate    = "jwk contains private key material"
	reasonJWKType       = "jwk key type or curve does not match alg"
	reasonJWKUsage      = "jwk is restricted to another algorithm or use"
	reasonJWKInvalid    = "jwk is not a valid public key"
	reasonRSASize       = "rsa key size is outside 2048 to 8192 bits"
	reasonSignature     = "signature is invalid"
	reasonPayload       = "proof payload is not a JSON object"
	reasonJTI           = "jti is missing or invalid"
	reasonHTM           = "htm does not match the request method"
	reasonHTUInvalid    = "htu is missing or not an absolute http(s) uri"
	reasonHTU           = "htu does not match the request uri"
	reasonIATInvalid    = "iat is missing or invalid"
	reasonIATOld        = "iat is too old"
	reasonIATFuture     = "iat is in the future"
	reasonATHMissing    = "ath is missing"
	reasonATH           = "ath does not match the access token"
	reasonNonceMissing  = "nonce is required"
	reasonNonce         = "nonce is invalid or expired"
	reasonReplay        = "jti has already been used"
	reasonReplayFailure = "replay check unavailable"
)

// invalid returns an invalid_dpop_proof error for a fixed reason.
func invalid(reason string) *Error {
	return &Error{Code: CodeInvalidProof, Reason: reason}
}
