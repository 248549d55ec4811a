// Package authservers runs the phantom token gateway against real
// authorization servers, one per Caddyfile that docs/authorization-servers.md
// marks as tested.
//
// Each test loads a `phantom_token` block verbatim from that page (found by
// its `<!-- as-config: NAME -->` marker;
// only the `{$…}` and `{env.…}` environment values differ, set by the
// test), wraps it in a site that proxies to the example MCP server
// (examples/mcpserver), and runs it in an in-process Caddy, all on
// 127.0.0.1:
//
//   - Ory Hydra v2.3.0 (examples/internal/hydra): json + sign;
//   - node oidc-provider 9.x (examples/internal/oidcprovider): json + sign,
//     rfc9701 + sign, json + token_exchange, client_secret_post and
//     private_key_jwt;
//   - the embedded fosite demo AS (examples/demoas): the Curity style, jwt.
//
// For every server and mode the tests show that an MCP session with a
// client-credentials token works end to end, with the MCP server verifying
// the forwarded JWT against the right JWKS; that one session costs one
// introspection; that a revoked token is refused once max_ttl has passed;
// that wrong gateway credentials are a 502; and, for the servers that honour
// RFC 8707, that the npm SDK's ClientCredentialsProvider finds everything
// by discovery.
//
// The package has only tests. They need the Hydra binary (built by
// examples/hydra/build.sh, or by the tests on first use) and Node.js with the
// npm packages of examples/oidc-provider and examples/e2e/node (installed by
// the tests when missing, except with CI=true). None of them skips:
//
//	cd examples && go test -race -count=1 ./e2e/authservers/
package authservers
