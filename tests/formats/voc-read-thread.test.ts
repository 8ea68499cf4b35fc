import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestAll, openTestEnv, traces, type TestEnv } from '../helpers/env.js';

/**
 * The VOC reader reads local XML files in a read thread. An ingest its consumer stops early must
 * leave nothing (no rows, no staging table) and no thread behind, and the next ingest works.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(async () => {
  await env?.close();
});

/** Threads of this process (Linux); null where /proc is not there. */
const threadCount = () => (fs.existsSync('/proc/self/task') ? fs.readdirSync('/proc/self/task').length : null);

describe('VOC read thread', () => {
  it('a consumer that stops mid-read leaves no rows and no thread, and the folder ingests afterwards', async () => {
    const dir = path.join(env.dir, 'stopped');
    fs.mkdirSync(path.join(dir, 'Annotations'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'JPEGImages'));
    const n = 3000;
    for (let i = 0; i < n; i++) {
      const id = String(i).padStart(6, '0');
      fs.writeFileSync(path.join(dir, 'Annotations', `${id}.xml`),
        `<annotation><filename>${id}.jpg</filename><size><width>64</width><height>48</height></size><object><name>c${i % 3}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>`);
    }
    const before = await traces(env.dv);
    const threads = threadCount();

    const run = env.dv.ingestion.ingest({ annotationPath: dir, format: 'voc' });
    let seen = 0;
    for await (const e of run) {
      // Stopped at the first progress of the read: files are still being read.
      if (e.stage === 'parsing_images' && (seen = e.current) > 0) break;
    }
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(n);
    expect(await traces(env.dv)).toEqual(before);
    // The read thread is gone by the time the ingest has stopped (terminate is awaited).
    expect(threadCount()).toBe(threads);

    const last = (await ingestAll(env.dv, { annotationPath: dir, format: 'voc' })).at(-1)!;
    expect(last).toMatchObject({ stage: 'complete', image_count: n, annotation_count: n, category_count: 3 });
  });
});
