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
// With Config.Users, users log in as MCP clients expect (MCP 2025-11-25):
//
//   - the authorization code grant with PKCE (S256 only, required), and
//     refresh tokens for clients registered for the refresh_token grant;
//     the authorization endpoint serves one HTML page for login and consent
//     (element ids for browser automation: see the AuthorizationPath
//     constant);
//   - each authorization is for one of Config.Resources (the "resource"
//     parameter, or the only resource configured), and the token carries
//     only scopes that resource accepts: requested scopes it does not
//     accept are dropped, none requested means all of them;
//   - clients are public clients whose client_id is the https URL of a
//     Client ID Metadata Document (or an http URL on loopback, for demos),
//     fetched with Config.MetadataClient and cached for 5 minutes, or
//     clients registered at RegistrationPath (RFC 7591, public or
//     confidential);
//   - loopback redirect URIs (127.0.0.1, [::1], localhost) match whatever
//     port the client listens on (RFC 8252 §7.3); others match exactly.
//
// With Config.Exchanges, a client (e.g. an MCP server) exchanges a token it
// received (RFC 8693): the subject token is a JWT this server signed (the
// introspection JWT a gateway forwards) or an opaque access token of this
// server; the issued token is an ordinary opaque access token for the
// exchange's target resource, for the same subject, with scopes mapped by
// Exchange.Scopes, never outliving the subject token, and introspected with
// "act": {"sub": <exchanging client>}.
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
//	POST /oauth2/token                              client_credentials (client_secret_basic or client_secret_post), RFC 8707 resource;
//	                                                with Users: authorization_code (PKCE) and refresh_token;
//	                                                with Exchanges: urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693)
//	POST /oauth2/introspect                         RFC 7662, or a JWT for Accept: application/jwt
//	POST /oauth2/revoke                             RFC 7009
//	GET  /.well-known/jwks.json                     the public signing key
//	GET  /.well-known/oauth-authorization-server    RFC 8414 metadata
//	GET  /.well-known/openid-configuration          the same document
//	GET  /oauth2/authorize                          with Users: the login and consent page; without: 400 unsupported_response_type
//	                                                (the endpoint is required by RFC 8414 and MCP clients)
//	POST /oauth2/authorize                          with Users: the user's answer (same query), then a redirect to the client
//	POST /oauth2/register                           with Users: RFC 7591 dynamic client registration
//
// The token, revocation, registration, metadata and JWKS endpoints answer
// cross-origin requests (Access-Control-Allow-Origin: *, and OPTIONS
// preflight) for browser-based clients such as MCP Inspector; no endpoint
// uses cookies.
//
// The MCP TypeScript SDK's client_secret_basic sends the client ID and
// secret without form-encoding them (RFC 6749 §2.3.1 asks for it) while
// fosite decodes them: use IDs and secrets without "%" or "+".
package demoas
