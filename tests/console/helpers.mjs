// Helpers of the console walk: the server under test (started by scripts/console-test.sh), its HTTP
// API, Chromium through playwright-core, and the checks every screen gets: the security headers, no
// API key in any page, axe-core, and a full-page screenshot at a desktop and a phone size.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import axe from 'axe-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const shotsDir = process.env.ALLOWLY_SCREENSHOTS ?? path.join(root, 'target/console-screenshots');
export const SIZES = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];

/** The server scripts/console-test.sh started: its URL, keys and workspace. */
export function server() {
  const need = ['ALLOWLY_URL', 'ALLOWLY_SETUP_KEY', 'ALLOWLY_RUNTIME_KEY', 'ALLOWLY_WORKSPACE_ID'];
  const missing = need.filter((name) => !process.env[name]);
  if (missing.length) throw new Error(`${missing.join(', ')} unset: run scripts/console-test.sh`);
  return {
    baseUrl: process.env.ALLOWLY_URL,
    setupKey: process.env.ALLOWLY_SETUP_KEY,
    runtimeKey: process.env.ALLOWLY_RUNTIME_KEY,
    workspaceId: process.env.ALLOWLY_WORKSPACE_ID,
  };
}

/** One HTTP API call: `{status, body (parsed JSON or null), bytes}`. */
export async function api(baseUrl, method, route, { key, json } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(baseUrl + route, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  let body = null;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    // not JSON
  }
  return { status: response.status, body, bytes };
}

/** Every item of a paged list route (`?cursor=` followed to the end). */
export async function everyItem(baseUrl, route, key) {
  const items = [];
  let cursor = null;
  for (let pages = 0; pages < 1000; pages += 1) {
    const separator = route.includes('?') ? '&' : '?';
    const url = cursor ? `${route}${separator}cursor=${encodeURIComponent(cursor)}` : route;
    const { status, body } = await api(baseUrl, 'GET', url, { key });
    if (status !== 200) throw new Error(`GET ${url}: ${status} ${JSON.stringify(body)}`);
    items.push(...body.items);
    if (!body.has_more || !body.next_cursor) return items;
    cursor = body.next_cursor;
  }
  throw new Error(`GET ${route}: more than 1000 pages`);
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/**
 * Watches every page of a browser context: each console document must carry the security headers
 * and must not contain an API key; no dialog may open; no script may throw. What goes wrong is
 * collected in `problems` (asserted at the end of the walk, so one finding does not hide the next).
 */
export class Watch {
  constructor(secrets) {
    this.secrets = secrets.filter(Boolean);
    this.problems = [];
    this.dialogs = [];
    this.pages = new Set();
    this.pending = [];
  }

  attach(context) {
    context.on('page', (page) => this.watchPage(page));
    for (const page of context.pages()) this.watchPage(page);
    return context;
  }

  watchPage(page) {
    page.on('dialog', (dialog) => {
      this.dialogs.push(`${dialog.type()}: ${dialog.message()} on ${page.url()}`);
      dialog.dismiss().catch(() => {});
    });
    page.on('pageerror', (error) => this.problems.push(`script error on ${page.url()}: ${error.message}`));
    page.on('response', (response) => {
      const request = response.request();
      const url = new URL(response.url());
      if (!url.pathname.startsWith('/console')) return;
      const document = request.resourceType() === 'document';
      const download = url.pathname.endsWith('/download') || url.pathname.endsWith('/export');
      if (!document && !download) return;
      if (response.status() >= 300 && response.status() < 400) return;
      // A path the console does not have (a screen not built yet) is the router's plain 404.
      if (response.status() === 404 && !(response.headers()['content-type'] ?? '').startsWith('text/html')) return;
      this.pending.push(this.inspect(response, `${request.method()} ${url.pathname}${url.search}`));
    });
  }

  async inspect(response, label) {
    const headers = response.headers();
    const csp = headers['content-security-policy'] ?? '';
    for (const part of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
      if (!csp.includes(part)) this.problems.push(`${label}: Content-Security-Policy lacks ${part}: "${csp}"`);
    }
    if (csp.includes('unsafe-inline') || csp.includes('unsafe-eval')) {
      this.problems.push(`${label}: Content-Security-Policy allows unsafe code: "${csp}"`);
    }
    if (headers['x-frame-options'] !== 'DENY') {
      this.problems.push(`${label}: X-Frame-Options is ${headers['x-frame-options']}, not DENY`);
    }
    let text = '';
    try {
      text = (await response.body()).toString('utf8');
    } catch {
      // A document replaced before its body was read: its HTML is checked through page.content().
      return;
    }
    this.checkText(text, label);
    this.pages.add(label.replace(/\?.*$/, ''));
  }

  /** An API key (whole, or its secret part) in `text` is a problem. */
  checkText(text, label) {
    for (const secret of this.secrets) {
      const tail = secret.split('.').pop();
      if (text.includes(secret) || (tail.length >= 16 && text.includes(tail))) {
        this.problems.push(`${label}: the page contains an API key (${secret.split('.').slice(0, 2).join('.')}…)`);
      }
    }
  }

  async settle() {
    const pending = this.pending.splice(0);
    await Promise.all(pending);
  }
}

/**
 * axe-core on the page as it is now: serious and critical violations, one readable line each.
 * The console's Content-Security-Policy forbids inline scripts, so this needs a context opened
 * with `bypassCSP: true` (see walk.test.mjs, which also shows that the policy blocks the injection
 * without it).
 */
export async function axeViolations(page) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.addScriptTag({ content: axe.source });
  const results = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
  );
  const lines = [];
  for (const violation of results.violations) {
    if (violation.impact !== 'serious' && violation.impact !== 'critical') continue;
    for (const node of violation.nodes) {
      lines.push(
        `[${violation.impact}] ${violation.id}: ${violation.help}\n      at ${node.target.join(' ')}\n      ${node.failureSummary?.replace(/\n/g, '\n      ')}`,
      );
    }
  }
  return lines;
}

/**
 * The screen as it is now, at every size: a full-page screenshot `<name>-<w>x<h>.png` and an axe
 * run (its findings go to `watch.problems`). The page is left at the first size.
 */
export async function capture(page, name, watch) {
  fs.mkdirSync(shotsDir, { recursive: true });
  for (const size of SIZES) {
    await page.setViewportSize(size);
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
    await page.screenshot({ path: path.join(shotsDir, `${name}-${size.width}x${size.height}.png`), fullPage: true });
    const violations = await axeViolations(page);
    for (const line of violations) watch.problems.push(`axe on ${name} at ${size.width}x${size.height}: ${line}`);
    if (size.width < 600) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 1) watch.problems.push(`${name} at ${size.width}px: the page is ${overflow}px wider than the screen`);
    }
  }
  await page.setViewportSize(SIZES[0]);
  watch.checkText(await page.content(), `${name} (as rendered)`);
}

/** The rows of the table captioned `caption`: `{header: [..], rows: [[cell text, ...], ...]}`. */
export async function tableByCaption(page, caption) {
  const table = page.locator('table', { has: page.locator('caption', { hasText: caption }) });
  if ((await table.count()) !== 1) throw new Error(`no single table captioned "${caption}"`);
  return table.evaluate((t) => {
    const text = (cell) => cell.textContent.replace(/\s+/g, ' ').trim();
    const header = [...t.querySelectorAll('thead tr th')].map(text);
    const rows = [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map(text));
    const rowHeaders = [...t.querySelectorAll('tbody tr')].map((tr) => tr.children[0]?.tagName === 'TH' && tr.children[0].getAttribute('scope') === 'row');
    return { header, rows, rowHeaders };
  });
}
