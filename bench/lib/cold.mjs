// What bench/http.mjs's cold row and bench/cold-layers.mjs share: the fixture's place, its 640×480
// files, the bare sharp loop, one burst of cold requests, and medians.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** bench/http.mjs's fixture folder: ../scratch/http-bench beside the repository, else the temp folder. */
export function defaultScratch(repo) {
  const shared = path.resolve(repo, '..', 'scratch');
  return fs.existsSync(shared) ? path.join(shared, 'http-bench') : path.join(os.tmpdir(), 'datavisor-http-bench');
}

/** Names of the 640×480 JPEGs in `dir`, sorted. */
export async function files640(sharp, dir) {
  const files = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const meta = await sharp(path.join(dir, name)).metadata();
    if (meta.width === 640 && meta.height === 480) files.push(name);
  }
  return files;
}

/** The service's pipeline (src/services/thumbnail-render.ts), minus the cache write. */
export function renderMedium(sharp, file) {
  return sharp(file, { failOn: 'warning', limitInputPixels: 100e6 }).rotate().resize({ width: 256, withoutEnlargement: true }).webp({ quality: 80 }).toBuffer();
}

/** The bare loop: every file rendered with 4 in flight; returns the wall seconds. */
export async function bareLoop(sharp, files) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < files.length) await renderMedium(sharp, files[next++]);
    }),
  );
  return (performance.now() - t0) / 1000;
}

/**
 * `n` requests to `url`, paths `pathOf(1..n)`, through autocannon with `connections` connections;
 * every answer must be a 200 with a body. Returns the seconds from the start to the last answer
 * (autocannon itself only stops on its next one-second tick).
 */
export async function coldBurst(autocannon, { url, connections, n, pathOf }) {
  let next = 1;
  let ok = 0;
  const failures = [];
  const t0 = performance.now();
  let last = t0;
  const instance = autocannon({ url, connections, amount: n, requests: [{ setupRequest: (req) => ({ ...req, path: pathOf(next++) }) }] });
  instance.on('response', (_client, status, bytes) => {
    last = performance.now();
    if (status === 200 && bytes > 0) ok++;
    else failures.push(`${status} (${bytes} bytes)`);
  });
  const result = await instance;
  if (ok !== n || result.errors || result.timeouts) {
    throw new Error(`cold burst on ${url}: ${ok} of ${n} answered 200; ${result.errors} errors, ${result.timeouts} timeouts; ${failures.slice(0, 3).join(', ')}`);
  }
  return (last - t0) / 1000;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
