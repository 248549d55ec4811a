// Package demoas is an embedded demo OAuth 2.0 authorization server built on
// github.com/ory/fosite, for the quickstart and for fast end-to-end tests.
//
// It issues opaque HMAC-SHA access tokens with the client credentials grant
// (client_secret_basic or client_secret_post). The RFC 8707 "resource"
// parameter (repeatable) and fosite's "audience" parameter become the token's
// audience ("aud"); a client may be limited to some resources
// (Client.Resources), and any other is refused with 400 invalid_target.
// Clients can be added while the server runs (Server.AddClient) and tokens
// revoked (Server.Revoke, or the revocation endpoint).
//
// It introspects the tokens in two ways:
//
//   - RFC 7662 JSON by default;
//   - Curity style when the request carries "Accept: application/jwt": the
//     answer is the access token as an RS256 JWT (JOSE header typ "at+jwt",
//     RFC 9068 claims) signed with the key published at
//     /.well-known/jwks.json, and 204 No Content when the token is inactive.
//
// It keeps everything in memory, listens on loopback and is not meant for
// production use.
//
// Endpoints:
//
//	POST /oauth2/token                              client_credentials (client_secret_basic or client_secret_post), RFC 8707 resource
//	POST /oauth2/introspect                         RFC 7662, or a JWT for Accept: application/jwt
//	POST /oauth2/revoke                             RFC 7009
//	GET  /.well-known/jwks.json                     the public signing key
//	GET  /.well-known/oauth-authorization-server    RFC 8414 metadata
//	GET  /.well-known/openid-configuration          the same document
//	*    /oauth2/authorize                          always 400 unsupported_response_type (required by RFC 8414 and MCP clients)
//
// The MCP TypeScript SDK's client_secret_basic sends the client ID and
// secret without form-encoding them (RFC 6749 §2.3.1 asks for it) while
// fosite decodes them: use IDs and secrets without "%" or "+".
package demoas
