import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readCoco, startHarness, type Harness } from './harness.js';

/**
 * GraphiQL in headless Chromium (Debian's `chromium`, which .ci/run installs): it loads from this
 * server alone, runs its default query and shows real samples.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// CI must run it; a developer machine without Chromium skips it with a note.
const available = fs.existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!available) console.warn(`graphiql.test.ts: ${CHROMIUM} is missing, skipping the browser test (apt-get install chromium)`);

let h: Harness;
let browser: Browser;
let id: string;

beforeAll(async () => {
  if (!available) return;
  h = await startHarness();
  id = await h.ingest();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe.skipIf(!available)('GraphiQL at /graphql', () => {
  test('serves its assets itself: no CDN in the page', async () => {
    const res = await fetch(`${h.base}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('YogaGraphiQL');
    expect(html).toMatch(/<script src="\/graphql\/assets\/[\d.]+\/graphiql\.js">/);
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/);
    expect(html).not.toMatch(/unpkg\.com|jsdelivr|cdnjs/);
  });

  test('runs its default query, a real page of samples of the newest dataset, and shows it', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    // Monaco starts its language worker when the editor wants it, which may come after the answer.
    const worker = page.waitForRequest((r) => r.url().startsWith(`${h.base}/graphql/assets/`) && r.url().endsWith('/graphql.worker.js'), { timeout: 30_000 });
    worker.catch(() => undefined); // awaited below; a test failing earlier must not leave it unhandled
    try {
      await page.goto(`${h.base}/graphql`);
      const answer = page.waitForResponse((r) => r.url() === `${h.base}/graphql` && r.request().method() === 'POST' && (r.request().postData() ?? '').includes('FirstSamples'));
      await page.locator('.graphiql-execute-button').click({ timeout: 30_000 });
      const body = await (await answer).json();
      const edges = body.data.samples.edges;
      expect(edges).toHaveLength(12);
      const first = (await readCoco()).images[0]!;
      expect(edges[0].node).toMatchObject({ sampleId: first.id, fileName: first.file_name, thumbnailUrl: `${h.base}/images/${id}/${first.id}?size=small` });
      expect(edges[0].node.annotations.length).toBeGreaterThan(0);
      await page.waitForFunction((name) => document.querySelector('.graphiql-response')?.textContent?.includes(name), first.file_name, { timeout: 30_000 });
      expect(await page.locator('.graphiql-response').innerText()).toContain('"thumbnailUrl"');

      // Nothing left the machine: every request went to this server (or a blob: worker of the page).
      const outside = requests.filter((u) => {
        const url = new URL(u);
        return !(url.protocol === 'blob:' || url.protocol === 'data:' || url.hostname === '127.0.0.1');
      });
      expect(outside).toEqual([]);
      expect(requests.some((u) => u.startsWith(`${h.base}/graphql`))).toBe(true);
      // The bundle comes from the links of the page (src/schema/graphiql-page.ts), workers included.
      await worker;
      const assets = requests.filter((u) => u.startsWith(`${h.base}/graphql/assets/`)).map((u) => u.split('/').at(-1));
      expect(assets).toEqual(expect.arrayContaining(['graphiql.css', 'graphiql.js', 'graphql.worker.js']));
    } finally {
      await page.close();
    }
  }, 60_000);
});
