// A real node oidc-provider 9.x authorization server for the Go tests
// (examples/internal/oidcprovider starts it). It issues opaque
// client-credentials access tokens for one protected resource, answers RFC 7662
// introspection (JSON, or an RFC 9701 signed JWT for clients registered with
// introspection_signed_response_alg), RFC 7009 revocation, and an RFC 8693
// token-exchange grant that swaps one of its opaque access tokens for an
// RFC 9068 JWT access token for the resource.
//
// Sender-constrained access tokens, both off by default:
//
//   - DPoP (RFC 9449, oidc-provider features.dPoP): a client-credentials token
//     request with a valid `DPoP` proof header gets an access token bound to
//     the proof key (token_type "DPoP"); introspection answers
//     cnf.jkt = the key's RFC 7638 thumbprint and token_type "DPoP". A client
//     registered with dpop_bound_access_tokens: true must send a proof.
//     Proof algorithms: oidc-provider's default ES256, Ed25519, EdDSA.
//   - mTLS (RFC 8705, oidc-provider features.mTLS certificateBoundAccessTokens):
//     the server speaks HTTPS and asks every client for a certificate (any
//     certificate, none is verified); an access token issued to a client
//     registered with tls_client_certificate_bound_access_tokens: true is
//     bound to the certificate the token request came with (none: the request
//     is refused), and introspection answers cnf["x5t#S256"] =
//     base64url(SHA-256(certificate DER)). Such a client still authenticates
//     with its secret or key (not tls_client_auth).
//
// Configuration, from the environment or from --name=value arguments (the
// argument wins):
//
//	PORT                port on 127.0.0.1; 0 (default) picks a free one
//	ISSUER              issuer identifier; default http(s)://127.0.0.1:<port>
//	CLIENTS             JSON array of client metadata (RFC 7591 names)
//	RESOURCE            the resource indicator (RFC 8707) the gateway protects
//	ACCESS_TOKEN_TTL    access-token lifetime in seconds (default 300)
//	DPOP                1 enables DPoP; 0 or empty (default) disables it
//	                    (oidc-provider's own default would enable it)
//	DPOP_REQUIRE_NONCE  1 makes every DPoP proof carry a nonce from the server
//	                    (error use_dpop_nonce + a DPoP-Nonce header otherwise);
//	                    needs DPOP=1
//	TLS_CERT, TLS_KEY   PEM server certificate (chain) and private key: serve
//	                    HTTPS instead of HTTP; both or neither
//	MTLS                1 asks for client certificates and enables
//	                    certificate-bound access tokens; needs TLS_CERT
//
// When it listens it prints one line on stdout:
//
//	READY {"issuer":"http://127.0.0.1:PORT","port":PORT}
//
// and it exits with status 0 on SIGTERM or SIGINT.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const RESOURCE_SCOPE = 'mcp:tools mcp:read';

function config() {
  const out = { ...process.env };
  for (const arg of process.argv.slice(2)) {
    const m = /^--([A-Za-z_][A-Za-z0-9_-]*)=(.*)$/s.exec(arg);
    if (!m) {
      throw new Error(`unrecognised argument ${JSON.stringify(arg)} (want --NAME=value)`);
    }
    out[m[1].toUpperCase().replaceAll('-', '_')] = m[2];
  }
  return out;
}

function positiveInt(name, value, fallback) {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

function flag(name, value) {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new Error(`${name} must be 1 or 0, got ${JSON.stringify(value)}`);
}

// clientCertificate returns the PEM certificate the TLS client presented on
// this request's connection, or undefined (features.mTLS.getCertificate).
// Nothing verifies it: certificate-bound tokens need only its thumbprint.
function clientCertificate(ctx) {
  const { socket } = ctx.req;
  if (typeof socket?.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate(false);
  if (!peer?.raw) return undefined;
  return new crypto.X509Certificate(peer.raw).toString();
}

// signingKey returns a fresh RS256 private JWK with an RFC 7638 thumbprint kid.
function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumbprint = crypto.createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { ...jwk, kid: thumbprint, alg: 'RS256', use: 'sig' };
}

// clientDefaults fills in what a machine-to-machine client registered by the
// tests leaves out: no redirect-based flows, client credentials only.
function clientDefaults(metadata) {
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    ...metadata,
  };
}

// values returns the values of a parameter that may be repeated (RFC 8693
// allows several resource and audience values; this server serves one).
function values(v) {
  if (v === undefined || v === '') return [];
  return Array.isArray(v) ? v : [v];
}

async function main() {
  const env = config();
  const port = positiveInt('PORT', env.PORT, 0);
  const accessTokenTTL = positiveInt('ACCESS_TOKEN_TTL', env.ACCESS_TOKEN_TTL, 300) || 300;
  const resource = env.RESOURCE || undefined;
  if (resource && !URL.canParse(resource)) {
    throw new Error(`RESOURCE must be an absolute URL, got ${JSON.stringify(resource)}`);
  }
  const clients = JSON.parse(env.CLIENTS || '[]');
  if (!Array.isArray(clients)) {
    throw new Error('CLIENTS must be a JSON array of client metadata objects');
  }
  const dPoP = flag('DPOP', env.DPOP);
  const dPoPRequireNonce = flag('DPOP_REQUIRE_NONCE', env.DPOP_REQUIRE_NONCE);
  if (dPoPRequireNonce && !dPoP) {
    throw new Error('DPOP_REQUIRE_NONCE=1 needs DPOP=1');
  }
  const tls = Boolean(env.TLS_CERT || env.TLS_KEY);
  if (tls && !(env.TLS_CERT && env.TLS_KEY)) {
    throw new Error('TLS_CERT and TLS_KEY go together');
  }
  const mTLS = flag('MTLS', env.MTLS);
  if (mTLS && !tls) {
    throw new Error('MTLS=1 needs TLS_CERT and TLS_KEY');
  }
  // oidc-provider drops client metadata of a disabled feature without a
  // word; a test that registers it means to use the feature.
  for (const c of clients) {
    if (c?.dpop_bound_access_tokens && !dPoP) {
      throw new Error(`client ${c.client_id}: dpop_bound_access_tokens needs DPOP=1`);
    }
    if (c?.tls_client_certificate_bound_access_tokens && !mTLS) {
      throw new Error(`client ${c.client_id}: tls_client_certificate_bound_access_tokens needs MTLS=1`);
    }
  }

  // Listen first: the issuer is not known before the port is.
  const server = tls
    ? https.createServer({
      cert: env.TLS_CERT,
      key: env.TLS_KEY,
      // Ask for a client certificate, accept any (or none): oidc-provider
      // binds tokens to it, nothing here authenticates with it.
      requestCert: mTLS,
      rejectUnauthorized: false,
    })
    : http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actualPort = server.address().port;
  const issuer = env.ISSUER || `${tls ? 'https' : 'http'}://127.0.0.1:${actualPort}`;

  const resourceServerInfo = (identifier) => ({
    scope: RESOURCE_SCOPE,
    audience: identifier,
    accessTokenFormat: 'opaque',
    accessTokenTTL,
  });

  // Extra claims for exchanged JWTs, keyed by the token model instance.
  const exchanged = new WeakMap();

  const provider = new Provider(issuer, {
    clients: clients.map(clientDefaults),
    jwks: { keys: [signingKey()] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access', ...RESOURCE_SCOPE.split(' ')],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: {
        enabled: dPoP,
        // A nonce secret must be a 32-byte Buffer; with one, the server
        // also answers a stale proof iat with use_dpop_nonce.
        ...(dPoPRequireNonce ? {
          nonceSecret: crypto.randomBytes(32),
          requireNonce: () => true,
        } : {}),
      },
      mTLS: {
        enabled: mTLS,
        certificateBoundAccessTokens: mTLS,
        getCertificate: clientCertificate,
      },
      introspection: {
        enabled: true,
        // Any authenticated confidential client (the gateway) may introspect.
        allowedPolicy: async (ctx, client, token) => (
          client.clientAuthMethod !== 'none' || token.clientId === client.clientId
        ),
      },
      jwtIntrospection: { enabled: true },
      revocation: {
        enabled: true,
        // Only the client a token was issued to may revoke it (the default).
        allowedPolicy: async (ctx, client, token) => {
          if (token.clientId !== client.clientId) {
            throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          }
          return true;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf ?? resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, identifier) => {
          if (resource && identifier === resource) {
            return resourceServerInfo(identifier);
          }
          throw new errors.InvalidTarget(`unknown resource indicator ${identifier}`);
        },
      },
    },
    formats: {
      customizers: {
        // The only JWT-format access tokens are the ones the token-exchange
        // grant issues: give them the subject token's subject.
        jwt: async (ctx, token, jwt) => {
          const extra = exchanged.get(token);
          if (extra) Object.assign(jwt.payload, extra);
        },
      },
    },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
      IdToken: 3600,
    },
  });

  // RFC 8693 token exchange: an opaque access token issued here becomes an
  // RFC 9068 JWT access token (typ at+jwt) for the resource.
  provider.registerGrantType(GRANT_TOKEN_EXCHANGE, async (ctx) => {
    const { params } = ctx.oidc;

    if (!params.subject_token) {
      throw new errors.InvalidRequest('missing required parameter \'subject_token\'');
    }
    if (params.subject_token_type !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw new errors.InvalidRequest(`unsupported subject_token_type, only ${TOKEN_TYPE_ACCESS_TOKEN} is supported`);
    }
    if (params.actor_token || params.actor_token_type) {
      throw new errors.InvalidRequest('actor_token is not supported');
    }
    const requested = params.requested_token_type || TOKEN_TYPE_JWT;
    if (requested !== TOKEN_TYPE_JWT && requested !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw new errors.InvalidRequest(`unsupported requested_token_type, only ${TOKEN_TYPE_JWT} and ${TOKEN_TYPE_ACCESS_TOKEN} are supported`);
    }

    // resource and audience name the target; both default to RESOURCE and
    // every value given must be it.
    const targets = new Set([...values(params.resource), ...values(params.audience)]);
    if (targets.size === 0 && resource) targets.add(resource);
    if (targets.size !== 1 || !resource || !targets.has(resource)) {
      throw new errors.InvalidTarget('the requested resource or audience is not served by this authorization server');
    }
    const target = resource;

    // RFC 8693 §2.2.2: an invalid subject_token is invalid_request.
    const subject = (await provider.AccessToken.find(params.subject_token))
      ?? (await provider.ClientCredentials.find(params.subject_token));
    if (!subject || !subject.isValid) {
      throw new errors.InvalidRequest('subject_token is invalid, expired or revoked');
    }
    if (subject.grantId) {
      const grant = await provider.Grant.find(subject.grantId);
      if (!grant || grant.clientId !== subject.clientId || grant.accountId !== subject.accountId) {
        throw new errors.InvalidRequest('subject_token is invalid, expired or revoked');
      }
    }
    if (subject.isSenderConstrained()) {
      throw new errors.InvalidRequest('sender-constrained subject tokens are not supported');
    }
    const subjectAud = values(subject.aud);
    if (subjectAud.length > 0 && !subjectAud.includes(target)) {
      throw new errors.InvalidTarget('subject_token was not issued for the requested resource');
    }
    const subjectClient = await provider.Client.find(subject.clientId);
    if (!subjectClient) {
      throw new errors.InvalidRequest('subject_token is invalid, expired or revoked');
    }

    // The scope is at most the subject token's, within the resource's.
    const resourceScopes = new Set(RESOURCE_SCOPE.split(' '));
    const subjectScopes = new Set((subject.scope || '').split(' ').filter(Boolean));
    let scopes = [...subjectScopes].filter((s) => resourceScopes.has(s));
    if (params.scope) {
      const asked = params.scope.split(' ').filter(Boolean);
      const notGranted = asked.filter((s) => !scopes.includes(s));
      if (notGranted.length) {
        throw new errors.InvalidScope('requested scope exceeds the subject_token scope', notGranted.join(' '));
      }
      scopes = asked;
    }

    const remaining = subject.exp - Math.floor(Date.now() / 1000);
    const ttl = Math.min(accessTokenTTL, remaining);
    if (ttl <= 0) {
      throw new errors.InvalidRequest('subject_token is invalid, expired or revoked');
    }

    const token = new provider.ClientCredentials({
      client: subjectClient,
      scope: scopes.join(' ') || undefined,
      expiresIn: ttl,
    });
    token.resourceServer = new provider.ResourceServer(target, {
      ...resourceServerInfo(target),
      accessTokenFormat: 'jwt',
      accessTokenTTL: ttl,
    });
    exchanged.set(token, { sub: subject.accountId || subject.clientId });

    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: requested,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope || undefined,
    };
  }, [
    'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
    'requested_token_type', 'resource', 'audience', 'scope',
  ], ['resource', 'audience']);

  provider.on('server_error', (ctx, err) => {
    console.error('server_error', ctx.method, ctx.path, err);
  });
  // The token endpoint's error_description hides why a grant failed (e.g.
  // "grant request is invalid" for a missing DPoP proof or client
  // certificate, or a replayed proof); the Go launcher shows this output
  // when a test fails.
  provider.on('grant.error', (ctx, err) => {
    console.error('grant.error', err.error, err.error_description, err.error_detail ?? '');
  });

  server.on('request', provider.callback());

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  process.stdout.write(`READY ${JSON.stringify({ issuer, port: actualPort })}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
