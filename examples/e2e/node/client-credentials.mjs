// The npm MCP SDK client with ClientCredentialsProvider and no token: the SDK
// does the whole MCP authorization discovery itself. Its first request gets
// a 401 whose WWW-Authenticate names the protected resource metadata; it
// reads that document (RFC 9728), then the authorization server's metadata
// (RFC 8414), asks the token endpoint for a client-credentials token for the
// resource (RFC 8707), and retries.
//
//   node client-credentials.mjs <mcpUrl> <clientId> <clientSecret> <scope> <expectedIssuer>
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { args, exercise, main, tracingFetch } from './lib.mjs';

const [mcpUrl, clientId, clientSecret, scope, expectedIssuer] = args(
  'node client-credentials.mjs <mcpUrl> <clientId> <clientSecret> <scope> <expectedIssuer>',
  5,
);

main(async () => {
  const trace = [];
  const authProvider = new ClientCredentialsProvider({ clientId, clientSecret, scope, expectedIssuer });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    authProvider,
    fetch: tracingFetch(trace),
  });
  return { ...(await exercise(transport)), trace };
});
