// A user-facing agent: the npm MCP SDK client with an OAuth client provider
// runs the authorization code flow with PKCE against the example
// deployment, and a real browser (Debian's Chromium, driven by
// playwright-core) does the user's part on the authorization server's login
// and consent page. The client registers with a Client ID Metadata Document
// (cimd) or by dynamic client registration (dcr). It then lists the tools
// and calls my_data, which returns the user's data from the API.
//
//   node browser-login.mjs <mcpUrl> cimd|dcr <username> <password> <callbackPort> [<clientMetadataUrl>]
//
// The report never holds a token: only whether the client's token was a JWT.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { main, tracingFetch } from './lib.mjs';

const usage = 'usage: node browser-login.mjs <mcpUrl> cimd|dcr <username> <password> <callbackPort> [<clientMetadataUrl>]';
const [mcpUrl, mode, username, password, callbackPort, clientMetadataUrl] = process.argv.slice(2);
if (!mcpUrl || !['cimd', 'dcr'].includes(mode) || !username || !password || !callbackPort || (mode === 'cimd') !== !!clientMetadataUrl) {
  console.error(usage);
  process.exit(64);
}
const redirectUrl = `http://127.0.0.1:${callbackPort}/callback`;

// The chromium flags this machine needs (no sandbox as root, no background
// network traffic, which the closed network refuses).
const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// callbackServer receives the authorization server's redirect, as a
// desktop MCP client's loopback listener does.
function callbackServer() {
  let deliver;
  const result = new Promise((resolve) => { deliver = resolve; });
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, redirectUrl);
    if (u.pathname !== '/callback') {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'text/plain');
    res.end('Signed in. You can close this window.');
    deliver({ code: u.searchParams.get('code'), state: u.searchParams.get('state'), error: u.searchParams.get('error') });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(callbackPort), '127.0.0.1', () => resolve({ server, result }));
  });
}

// BrowserProvider is the SDK's OAuthClientProvider for a user-facing agent:
// it keeps everything in memory and sends the user to the login page in the
// browser.
class BrowserProvider {
  constructor(login) {
    this.login = login;
    this.sentState = randomBytes(16).toString('hex');
    if (mode === 'cimd') this.clientMetadataUrl = clientMetadataUrl;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'phantom-token browser e2e',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { return this.sentState; }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  redirectToAuthorization(url) { this.loggingIn = this.login(url); }
}

// userLogsIn opens the login page in Chromium, records what it shows, and
// logs in and consents as the user.
async function userLogsIn(browser, url, page) {
  const tab = await browser.newPage();
  try {
    await tab.goto(String(url));
    page.client = (await tab.textContent('#client'))?.trim();
    page.resource = (await tab.textContent('#resource'))?.trim();
    page.scopes = (await tab.textContent('#scopes'))?.trim();
    await tab.fill('#username', username);
    await tab.fill('#password', password);
    await Promise.all([tab.waitForURL(`${redirectUrl}**`), tab.click('#allow')]);
  } finally {
    await tab.close();
  }
}

main(async () => {
  const trace = [];
  const page = {};
  const { server, result: callback } = await callbackServer();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: chromiumArgs,
  });
  try {
    const provider = new BrowserProvider((url) => userLogsIn(browser, url, page));
    const fetchFn = tracingFetch(trace);

    // First connection: the 401 starts discovery, registration and the
    // redirect to the login page.
    const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn });
    try {
      await new Client({ name: 'phantom-token-browser-e2e', version: '1.0.0' }).connect(first);
      throw new Error('connected without logging in');
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
    }
    if (!provider.loggingIn) throw new Error('the SDK never sent the user to the login page');
    await provider.loggingIn;
    const { code, state, error } = await callback;
    if (error || !code) throw new Error(`the authorization server redirected with error ${error}`);
    if (state !== provider.sentState) throw new Error('the redirect carried another state');
    await first.finishAuth(code);

    // Second connection, with the token.
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn });
    const client = new Client({ name: 'phantom-token-browser-e2e', version: '1.0.0' });
    await client.connect(transport);
    const { tools } = await client.listTools();
    const myData = await client.callTool({ name: 'my_data', arguments: {} });
    if (myData.isError) throw new Error(`my_data failed: ${JSON.stringify(myData.content)}`);
    await client.close();

    const token = provider.saved?.access_token ?? '';
    return {
      clientId: provider.info?.client_id,
      page,
      tools: tools.map((t) => t.name),
      myData: myData.structuredContent,
      tokenIsJWT: token.split('.').length === 3,
      tokenLength: token.length,
      trace,
    };
  } finally {
    await browser.close();
    server.close();
  }
}, 60_000); // Chromium's start is part of it
