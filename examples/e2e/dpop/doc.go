// Package dpop runs the phantom token gateway with DPoP-bound access tokens
// (RFC 9449) from a real authorization server, node oidc-provider 9.x
// (examples/internal/oidcprovider with Options.DPoP), all on 127.0.0.1:
//
//   - raw requests: a token bound to an ES256 or an EdDSA key, introspected
//     as JSON, passes with good proofs (on the cache miss and on hits) and
//     reaches the example MCP server as a Bearer JWT the gateway signed,
//     carrying cnf.jkt and no DPoP header; a proof from another key, the
//     token sent as Bearer, and a replayed proof are refused;
//   - the go-sdk MCP client, which has no DPoP support, with the
//     examples/internal/dpopclient transport: whole sessions through the
//     gateway, with and without the gateway's server nonces.
//
// The fleet-wide replay record and nonces (two gateway processes sharing
// Redis) are tested in examples/fleet.
//
// The package has only tests. They need Node.js with the npm packages of
// examples/oidc-provider (installed by the tests when missing; a failure
// fails them, it never skips them):
//
//	cd examples && go test -race -count=1 ./e2e/dpop/
package dpop
