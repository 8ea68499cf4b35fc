import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSecured, TOKEN, type Harness } from './helpers.js';

/**
 * Signed image URLs in a real browser (Debian's `chromium` through playwright-core; .ci/run
 * installs it). A page on another origin (a tiny node:http server of this test) fetches
 * /samples?limit=10 with the token, which takes a CORS preflight, puts the ten thumbnail_urls
 * into <img> tags and reports what each one decoded. With the signatures as handed out every
 * image shows; stripped, tampered or moved to another size, none does. Also: a page of an origin
 * not in DATAVISOR_CORS_ORIGINS cannot read the API, and GraphiQL works with the token typed
 * into its Headers tab.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// CI must run it (.ci/run installs chromium); a developer machine without Chromium skips it with a note.
const available = fs.existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!available) console.warn(`browser.test.ts: ${CHROMIUM} is missing, skipping the browser test (apt-get install chromium)`);

type Mode = 'signed' | 'unsigned' | 'tampered' | 'other-size';

interface ImageResult {
  src: string;
  event: 'load' | 'error';
  naturalWidth: number;
}

interface PageReport {
  error?: string;
  images?: ImageResult[];
}

/** The page: fetch a page of samples with the token, then one <img> per thumbnail_url. */
function pageHtml(api: string, datasetId: string): string {
  const config = JSON.stringify({ api, token: TOKEN, datasetId });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>thumbnails</title></head>
<body>
<script>
const { api, token, datasetId } = ${config};
const mode = new URLSearchParams(location.search).get('mode');
function alter(url) {
  const u = new URL(url);
  if (mode === 'unsigned') { u.searchParams.delete('exp'); u.searchParams.delete('sig'); }
  if (mode === 'tampered') { const s = u.searchParams.get('sig'); u.searchParams.set('sig', (s[0] === 'A' ? 'B' : 'A') + s.slice(1)); }
  if (mode === 'other-size') u.searchParams.set('size', 'large');
  return u.toString();
}
(async () => {
  try {
    const res = await fetch(api + '/samples?dataset_id=' + datasetId + '&limit=10', { headers: { Authorization: 'Bearer ' + token } });
    if (!res.ok) throw new Error('samples answered ' + res.status);
    const { items } = await res.json();
    const images = await Promise.all(items.map((item) => new Promise((resolve) => {
      const img = document.createElement('img');
      img.onload = () => resolve({ src: img.src, event: 'load', naturalWidth: img.naturalWidth });
      img.onerror = () => resolve({ src: img.src, event: 'error', naturalWidth: img.naturalWidth });
      img.src = alter(item.thumbnail_url);
      document.body.append(img);
    })));
    window.report = { images };
  } catch (e) {
    window.report = { error: String(e) };
  }
})();
</script>
</body></html>`;
}

/** A page server on its own port: another origin than the API. */
async function pageServer(html: () => string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let h: Harness;
let id: string;
let allowed: Awaited<ReturnType<typeof pageServer>>;
let foreign: Awaited<ReturnType<typeof pageServer>>;
let browser: Browser;

beforeAll(async () => {
  if (!available) return;
  // The page servers exist first: the API's CORS list names the allowed one.
  const html = () => pageHtml(h.base, id);
  allowed = await pageServer(html);
  foreign = await pageServer(html);
  h = await startSecured({ DATAVISOR_CORS_ORIGINS: allowed.origin });
  id = await h.ingest();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await allowed?.close();
  await foreign?.close();
  await h?.close();
});

/** Opens the page in a fresh context (no cache shared between modes) and waits for its report. */
async function open(origin: string, mode: Mode): Promise<{ report: PageReport; requested: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/images/')) requested.push(r.url());
  });
  try {
    await page.goto(`${origin}/?mode=${mode}`);
    const handle = await page.waitForFunction(() => (window as unknown as { report?: unknown }).report, null, { timeout: 30_000 });
    return { report: (await handle.jsonValue()) as PageReport, requested };
  } finally {
    await context.close();
  }
}

describe.skipIf(!available)('signed thumbnail URLs in headless Chromium', () => {
  test('a page of another origin fetches ten samples with the token and every <img> decodes', async () => {
    const { report, requested } = await open(allowed.origin, 'signed');
    expect(report.error).toBeUndefined();
    expect(report.images).toHaveLength(10);
    for (const img of report.images!) {
      expect(img.src).toMatch(/&exp=\d+&sig=/);
      expect(img, img.src).toMatchObject({ event: 'load' });
      expect(img.naturalWidth).toBe(256);
    }
    expect(requested.sort()).toEqual(report.images!.map((i) => i.src).sort());
  });

  test.each([
    ['unsigned', 401],
    ['tampered', 403],
    ['other-size', 403],
  ] as const)('the same page with %s URLs shows no image', async (mode, status) => {
    const { report, requested } = await open(allowed.origin, mode);
    expect(report.error).toBeUndefined();
    expect(report.images).toHaveLength(10);
    for (const img of report.images!) expect(img, img.src).toMatchObject({ event: 'error', naturalWidth: 0 });
    // The browser asked for every one (Chromium's ORB then hides the JSON refusal from the page
    // and from playwright); the server's answer to those very URLs is the refusal.
    expect(requested.sort()).toEqual(report.images!.map((i) => i.src).sort());
    for (const img of report.images!) {
      const res = await fetch(img.src);
      expect(res.status, img.src).toBe(status);
      await res.arrayBuffer();
    }
  });

  test('GraphiQL loads without the token; with it typed into its Headers tab, its requests pass', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const posts: { status: number; authorization: string | undefined }[] = [];
    page.on('response', (r) => {
      if (r.url() === `${h.base}/graphql` && r.request().method() === 'POST') posts.push({ status: r.status(), authorization: r.request().headers().authorization });
    });
    try {
      await page.goto(`${h.base}/graphql`);
      // The placeholder header is refused: GraphiQL shows the 401's message.
      await page.waitForFunction(() => document.querySelector('.graphiql-response')?.textContent?.includes('UNAUTHENTICATED'), null, { timeout: 30_000 });
      expect(posts.length).toBeGreaterThan(0);
      expect(posts.every((p) => p.status === 401 && p.authorization === 'Bearer <DATAVISOR_API_TOKEN>')).toBe(true);
      // The Headers tab is open with the placeholder: replace it, as a user would, and re-fetch the schema.
      await page.locator('.graphiql-editor-tool .monaco-editor:visible').first().click();
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
      const introspection = page.waitForResponse((r) => r.url() === `${h.base}/graphql` && r.request().method() === 'POST' && r.request().headers().authorization === `Bearer ${TOKEN}`);
      await page.locator('.graphiql-sidebar button[aria-label^="Re-fetch GraphQL schema"]').click();
      const res = await introspection;
      expect(res.status()).toBe(200);
      expect(((await res.json()) as { data?: { __schema?: unknown } }).data?.__schema).toBeDefined();
    } finally {
      await context.close();
    }
  }, 60_000);

  test('the same page served from an origin not in DATAVISOR_CORS_ORIGINS cannot read the API', async () => {
    const { report, requested } = await open(foreign.origin, 'signed');
    expect(report.images).toBeUndefined();
    expect(report.error).toMatch(/TypeError: Failed to fetch/);
    expect(requested).toEqual([]);
  });
});
