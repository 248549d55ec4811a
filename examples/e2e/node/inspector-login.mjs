// The MCP Inspector's web UI, driven in Debian's Chromium by playwright-core
// the way a person uses it against the example deployment: switch the
// server on, which starts the OAuth flow (discovery from the gateway's 401,
// dynamic registration, the authorization server's login page); log in and
// consent; back in the Inspector, open Tools, run my_data and read the
// result.
//
//   node inspector-login.mjs <inspectorUrl> <username> <password>
//
// <inspectorUrl> is the URL the Inspector printed, with its API token.
import { chromium } from 'playwright-core';
import { main } from './lib.mjs';

const [inspectorUrl, username, password] = process.argv.slice(2);
if (!inspectorUrl || !username || !password) {
  console.error('usage: node inspector-login.mjs <inspectorUrl> <username> <password>');
  process.exit(64);
}

// The chromium flags this machine needs (see browser-login.mjs).
const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

main(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: chromiumArgs,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(20_000);
    const visited = [];
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) visited.push(new URL(f.url()).origin + new URL(f.url()).pathname);
    });
    await page.goto(inspectorUrl);

    // The server card's switch connects; the Inspector finds out it needs
    // OAuth and sends the tab to the authorization server.
    await page.locator('.mantine-Switch-track').first().click();
    await page.waitForSelector('#username');
    const login = {
      url: new URL(page.url()).origin + new URL(page.url()).pathname,
      client: (await page.textContent('#client'))?.trim(),
      resource: (await page.textContent('#resource'))?.trim(),
      scopes: (await page.textContent('#scopes'))?.trim(),
    };
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('#allow');

    // Back in the Inspector, connected.
    await page.getByText('Connected', { exact: true }).waitFor();
    const protocol = (await page.getByText(/^MCP \d{4}-\d{2}-\d{2}$/).first().textContent())?.trim();

    await page.getByText('Tools', { exact: true }).click();
    await page.getByRole('button', { name: 'my_data', exact: true }).waitFor();
    const tools = [];
    for (const name of ['countdown', 'my_data', 'save_note', 'whoami']) {
      if (await page.getByRole('button', { name, exact: true }).count()) tools.push(name);
    }
    await page.getByRole('button', { name: 'my_data', exact: true }).click();
    await page.getByRole('button', { name: 'Execute Tool' }).click();
    const results = page.locator('h3', { hasText: 'Results' })
      .locator('xpath=ancestor::div[contains(@class, "mantine-Card-root")][1]');
    await page.getByText('Structured Output', { exact: true }).waitFor();
    const result = (await results.innerText()).replace(/\s+/g, ' ');
    return { login, protocol, tools, result, visited };
  } finally {
    await browser.close();
  }
}, 90_000);
