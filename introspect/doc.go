// Package introspect is the authorization-server (AS) client of the phantom
// token gateway: it introspects an opaque access token at the AS and returns
// a plain [Result] holding the decision, the claims and the JWT to forward
// upstream.
//
// The package deliberately knows nothing about Caddy: it depends only on the
// standard library and jwx, so it can be tested (and reused) on its own. All
// network I/O happens in [Client.Introspect] and [JWKSVerifier.Verify];
// constructing either does none, so configuration can be validated offline.
//
// Failures are reported as [*Error] whose [ErrorKind] tells the caller which
// gateway status to answer with: [KindUnavailable] (503) when the AS could
// not be reached, [KindBadResponse] (502) when it answered something the
// gateway cannot trust. Error messages never contain tokens, JWTs, secrets or
// AS response bodies.
package introspect
