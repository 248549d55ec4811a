// Package mcpserver is an example MCP server for the phantom token pattern:
// it sits behind the gateway, receives "Authorization: Bearer <JWT>" in place
// of the client's opaque token, and validates that JWT itself before any MCP
// message is handled.
//
// It is built on github.com/modelcontextprotocol/go-sdk (streamable HTTP
// transport: stateful sessions for clients of protocol versions before
// 2026-07-28, stateless for 2026-07-28 and later) and validates JWTs with
// github.com/lestrrat-go/jwx/v2:
//
//   - the signature, against the authorization server's JWKS (fetched lazily,
//     cached, refreshed in the background and when an unknown "kid" shows up);
//   - the algorithm, from an allow-list of asymmetric algorithms (RS*, PS*,
//     ES*, EdDSA): never "none" or HS*;
//   - "iss" equal to Config.Issuer, "aud" containing Config.Resource, "exp"
//     present and in the future (with a small leeway), "nbf" if present;
//   - the JOSE "typ", when present, must be "at+jwt" (RFC 9068), in any case
//     and with or without the "application/" prefix.
//
// A request without a valid JWT is answered 401 with a Bearer challenge and
// never reaches the MCP layer. The verified claims reach tools through
// [auth.TokenInfo] (req.Extra.TokenInfo); [Claims] extracts them.
//
// Tools:
//
//   - whoami: returns the verified JWT claims, as structured content and as
//     JSON text;
//   - save_note {text}: stores a note in memory; needs the mcp:write scope,
//     or mcp:admin, which implies it (checked on the verified JWT, behind
//     the gateway's mcp_operation and scope_implies);
//   - countdown {n}: sends n progress notifications (default 3) about 100ms
//     apart on the request's SSE stream, then returns "done", so streaming
//     through the gateway can be observed.
//
// # DNS-rebinding protection and the Host header
//
// The go-sdk refuses (403) a request that arrives on a loopback address with
// a Host header that is not a loopback name: a browser tricked by DNS
// rebinding would send the attacker's host name. This server keeps that
// protection on. A reverse proxy in front of a loopback MCP server must
// therefore present the upstream's own address as Host, as
// Caddyfile.example does with
//
//	reverse_proxy 127.0.0.1:9000 {
//		header_up Host {upstream_hostport}
//	}
//
// Without it, every request proxied for "mcp.example.com" would be refused.
// (The SDK's StreamableHTTPOptions.DisableLocalhostProtection would switch
// the check off; this example deliberately does not.)
//
// [auth.TokenInfo]: https://pkg.go.dev/github.com/modelcontextprotocol/go-sdk/auth#TokenInfo
package mcpserver
