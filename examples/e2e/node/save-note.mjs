// The npm MCP SDK client calling the save_note tool, which the gateway
// guards with an mcp_operation rule: initialize, tools/list, whoami,
// save_note (its outcome reported, not thrown), end the session.
//
// With a token it was handed:
//   node save-note.mjs <mcpUrl> static <token>
// With ClientCredentialsProvider and no token (discovery, then whatever the
// SDK does on a 403 insufficient_scope):
//   node save-note.mjs <mcpUrl> client-credentials <clientId> <clientSecret> <scope> <expectedIssuer>
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { exercise, main, tracingFetch } from './lib.mjs';

const usage =
  'usage: node save-note.mjs <mcpUrl> static <token>\n' +
  '       node save-note.mjs <mcpUrl> client-credentials <clientId> <clientSecret> <scope> <expectedIssuer>';
const [mcpUrl, mode, ...rest] = process.argv.slice(2);
const wantArgs = { static: 1, 'client-credentials': 4 }[mode];
if (!mcpUrl || wantArgs === undefined || rest.length !== wantArgs || rest.some((v) => !v)) {
  console.error(usage);
  process.exit(64);
}

main(async () => {
  const trace = [];
  const options = { fetch: tracingFetch(trace) };
  if (mode === 'static') {
    options.requestInit = { headers: { Authorization: `Bearer ${rest[0]}` } };
  } else {
    const [clientId, clientSecret, scope, expectedIssuer] = rest;
    options.authProvider = new ClientCredentialsProvider({ clientId, clientSecret, scope, expectedIssuer });
  }
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), options);
  return { ...(await exercise(transport, { saveNote: true })), trace };
});
