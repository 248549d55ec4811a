// Shared by the scripts in this folder: an HTTP trace, and the one-line JSON
// report the Go tests parse. Nothing here prints a token or a secret.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';

// tracingFetch wraps fetch and records, for every request the SDK makes, the
// method, URL, response status and whether it carried an Authorization header
// (never its value). For form bodies (the token request) it records
// grant_type, scope and resource, and nothing else; for JSON-RPC bodies the
// method and params.name (never the arguments); for responses the
// WWW-Authenticate challenge (it names scopes, never a token).
export function tracingFetch(trace) {
  return async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const entry = { method, url, authorization: headers.has('authorization') };
    const form = formOf(init.body);
    if (form) {
      entry.form = {};
      for (const name of ['grant_type', 'scope', 'resource']) {
        if (form.has(name)) entry.form[name] = form.getAll(name).join(' ');
      }
    }
    const rpc = rpcOf(init.body);
    if (rpc) Object.assign(entry, rpc);
    trace.push(entry);
    try {
      const response = await fetch(input, init);
      entry.status = response.status;
      const challenge = response.headers.get('www-authenticate');
      if (challenge) entry.wwwAuthenticate = challenge;
      return response;
    } catch (err) {
      entry.error = String(err?.message ?? err);
      throw err;
    }
  };
}

// rpcOf returns the JSON-RPC method and params.name of a JSON body.
function rpcOf(body) {
  if (typeof body !== 'string' || !body.trimStart().startsWith('{')) return undefined;
  try {
    const msg = JSON.parse(body);
    const rpc = {};
    if (typeof msg.method === 'string') rpc.rpcMethod = msg.method;
    if (typeof msg.params?.name === 'string') rpc.rpcName = msg.params.name;
    return rpc;
  } catch {
    return undefined;
  }
}

function formOf(body) {
  if (body instanceof URLSearchParams) return body;
  if (typeof body === 'string' && !body.trimStart().startsWith('{')) return new URLSearchParams(body);
  return undefined;
}

// exercise connects the client over transport, lists the tools, calls
// whoami (and, with saveNote, the save_note tool, whose outcome it reports
// rather than throws), ends the session (DELETE) and closes.
export async function exercise(transport, { saveNote = false } = {}) {
  const client = new Client({ name: 'phantom-token-e2e', version: '1.0.0' });
  await client.connect(transport);
  const sessionId = transport.sessionId ?? null;
  const { tools } = await client.listTools();
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  if (whoami.isError) throw new Error(`whoami failed: ${JSON.stringify(whoami.content)}`);
  const report = { sessionId, tools: tools.map((t) => t.name), whoami: textOf(whoami) };
  if (saveNote) report.saveNote = await callSaveNote(client);
  await transport.terminateSession();
  await client.close();
  return report;
}

// callSaveNote calls the save_note tool and reports what happened.
async function callSaveNote(client) {
  try {
    const result = await client.callTool({ name: 'save_note', arguments: { text: 'from the npm SDK' } });
    return { ok: !result.isError, text: textOf(result) };
  } catch (err) {
    return { ok: false, error: String(err?.message ?? err) };
  }
}

function textOf(result) {
  return (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

// main runs fn, prints its result as one JSON line on stdout and exits 0; on
// failure it prints the error on stderr and exits 1. A watchdog ends a run
// hung for timeoutMs.
export function main(fn, timeoutMs = 30_000) {
  const watchdog = setTimeout(() => {
    console.error('timed out');
    process.exit(2);
  }, timeoutMs);
  watchdog.unref();
  fn().then(
    (result) => {
      process.stdout.write(JSON.stringify(result) + '\n');
      process.exit(0);
    },
    (err) => {
      console.error(err?.stack ?? String(err));
      process.exit(1);
    },
  );
}

// args returns the command-line arguments, or exits 64 with usage.
export function args(usage, count) {
  const a = process.argv.slice(2);
  if (a.length !== count || a.some((v) => !v)) {
    console.error(`usage: ${usage}`);
    process.exit(64);
  }
  return a;
}
