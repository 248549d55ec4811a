// The npm MCP SDK client with a bearer token it was handed: initialize,
// tools/list, tools/call whoami, end the session.
//
//   node static-token.mjs <mcpUrl> <token>
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { args, exercise, main, tracingFetch } from './lib.mjs';

const [mcpUrl, token] = args('node static-token.mjs <mcpUrl> <token>', 2);

main(async () => {
  const trace = [];
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: tracingFetch(trace),
  });
  return { ...(await exercise(transport)), trace };
});
