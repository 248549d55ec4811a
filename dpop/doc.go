// Package dpop validates DPoP proofs (RFC 9449) at a resource server: the
// phantom token gateway, which receives "Authorization: DPoP <opaque
// token>" together with a "DPoP: <proof JWT>" header.
//
// [Verifier.Verify] runs the checks of RFC 9449 §4.3 and §7.1 on the proof
// — one header value, a compact JWS typed "dpop+jwt", an asymmetric
// algorithm from the allow-list, an embedded public jwk of the matching
// type whose key verifies the signature, htm and htu matching the request,
// a fresh iat, ath over the access token, the server nonce when nonces are
// on ([NonceSource]) — and, last, that the jti was not seen before
// ([ReplayCache]). It returns the RFC 7638 thumbprint of the proof key; the
// caller compares it with the "cnf.jkt" the introspection returned, which
// is what binds the token to the key.
//
// The embedded jwk is the only key ever used: no jku, x5u, x5c or kid is
// followed, so verifying a proof does no I/O other than the replay check.
//
// Every failure a client can cause is an [*Error] whose Code is the
// WWW-Authenticate error to answer with and whose Reason is a fixed phrase:
// neither ever contains the proof, the token, the jti or any claim value,
// so both can be logged and sent back as is.
//
// The package deliberately knows nothing about Caddy: it depends only on
// the standard library and jwx (which the tests use to sign proofs), so it
// can be tested and reused on its own.
package dpop
