// Package introspect is the authorization-server (AS) client of the phantom
// token gateway: it introspects an opaque access token at the AS and returns
// a plain [Result] holding the decision, the claims and the JWT to forward
// upstream.
//
// Three reply formats are supported (see [Format]): the Curity-style JWT
// body, RFC 7662 JSON, and RFC 9701 signed introspection responses. When the
// AS does not hand out a JWT itself, [Exchanger] obtains one by RFC 8693
// token exchange. Both authenticate the gateway the same way (see
// [ClientAuth]): client secret (basic or post), private_key_jwt (RFC 7523,
// key from [LoadPrivateKey]) or tls_client_auth (RFC 8705, HTTP client from
// [NewTLSClientAuthHTTPClient]).
//
// The package deliberately knows nothing about Caddy: it depends only on the
// standard library and jwx, so it can be tested (and reused) on its own. All
// network I/O happens in [Client.Introspect], [Exchanger.Exchange] and
// [JWKSVerifier.Verify]; constructing any of them does none, so
// configuration can be validated offline.
//
// Failures are reported as [*Error] whose [ErrorKind] tells the caller which
// gateway status to answer with: [KindUnavailable] (503) when the AS could
// not be reached, [KindBadResponse] (502) when it answered something the
// gateway cannot trust, [KindRejected] (401) when a token exchange refused
// the client's token. Error messages never contain tokens, JWTs, secrets or
// AS response bodies.
package introspect
