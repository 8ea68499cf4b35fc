import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions, leaseSummaries } from '../../dist/services/db/summaries.js';
import { DEMO, importAll, ingestAll, openTestEnv, RBC, readJson, type TestEnv } from '../helpers/env.js';
import { categoryCounts, cooccurrence, fieldValues, numpyHistogram, select, type Coco } from './oracle.js';

/**
 * The summaries the aggregations keep per revision (db/summaries.ts) through the service: answers
 * stay exact across a change that adds annotations, only the current revision's rows are kept, a
 * deleted dataset's go, and a read holding a revision keeps its rows. Expected values come from the
 * JSON files (oracle.ts) and from counts of the files' own (image, category) pairs.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await openTestEnv();
});
afterAll(() => env?.close());

async function ingest(annotationPath: string, imageDir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const events = await ingestAll(env.dv, { annotationPath, imageDir, ...extra });
  const last = events.at(-1)!;
  if (last.stage !== 'complete') throw new Error(`ingest failed: ${last.message}`);
  return last.dataset_id!;
}

/** Two COCO files as one: the second's image ids moved past the first's (each RBC split starts at 0). */
function joined(a: Coco, b: Coco): Coco {
  const shift = Math.max(...a.images.map((i) => i.id)) + 1;
  return {
    categories: a.categories,
    images: [...a.images, ...b.images.map((i) => ({ ...i, id: i.id + shift }))],
    annotations: [...a.annotations, ...b.annotations.map((x) => ({ ...x, image_id: x.image_id + shift }))],
  };
}

/** Distinct (image, category) pairs of a file: the rows of its ground truth's category summary. */
const pairsOf = (coco: Coco) => new Set(coco.annotations.map((a) => `${a.image_id}/${a.category_id}`)).size;

const rows = async (table: string, id: string) =>
  (await env.dv.db.query(`SELECT revision, count(*)::INTEGER AS n FROM ${table} WHERE dataset_id = $1 GROUP BY revision ORDER BY revision`, [id])).map((r) => ({ revision: r.revision as number, n: r.n as number }));

/** What the service answers for each part that reads a summary, and what the oracle expects of `coco`. */
async function answers(id: string, coco: Coco) {
  const agg = env.dv.aggregations;
  const out = { got: {} as Record<string, unknown>, want: {} as Record<string, unknown> };
  for (const categories of [undefined, ['wbc']]) {
    const t = await agg.target(id, categories ? { categories } : {});
    const s = select(coco, categories);
    const key = categories ? 'wbc' : 'all';
    out.got[key] = {
      counts: await agg.counts(t),
      categories: (await agg.categories(t, { sampleCounts: true })).map(({ name, count, sampleCount }) => ({ name, count, sampleCount })),
      cooccurrence: await agg.cooccurrence(t, 10),
      area: await agg.histogram(t, { field: 'bbox_area' }),
      logArea: await agg.histogram(t, { field: 'bbox_area', scale: 'log', bins: 7 }),
      relative: await agg.histogram(t, { field: 'relative_size', bins: 5 }),
    };
    const hist = (field: string, bins: number | null, log = false) => numpyHistogram(fieldValues(coco, s, field), bins, null, log);
    out.want[key] = {
      counts: { sampleCount: s.images.length, annotationCount: s.annotations.length },
      categories: categoryCounts(coco, s),
      cooccurrence: cooccurrence(coco, s, 10),
      area: { field: 'bbox_area', scale: 'linear', ...hist('BBOX_AREA', null) },
      logArea: { field: 'bbox_area', scale: 'log', ...hist('BBOX_AREA', 7, true) },
      relative: { field: 'relative_size', scale: 'linear', ...hist('RELATIVE_SIZE', 5) },
    };
  }
  return out;
}

/** Edges compared to a relative 1e-12 (exp of the ln-space edges may differ in the last bit). */
function expectClose(got: unknown, want: unknown): void {
  const g = JSON.parse(JSON.stringify(got), (k, v) => (k === 'edges' ? (v as number[]).map((x) => Number(x.toPrecision(12))) : v));
  const w = JSON.parse(JSON.stringify(want), (k, v) => (k === 'edges' ? (v as number[]).map((x) => Number(x.toPrecision(12))) : v));
  expect(g).toEqual(w);
}

describe('summaries', () => {
  it('answer exactly before and after a change adds annotations (--into), and keep only the current revision', async () => {
    const valid = readJson<Coco>(RBC('valid').annotations);
    const test = readJson<Coco>(RBC('test').annotations);
    const id = await ingest(RBC('valid').annotations, RBC('valid').images, { format: 'coco', split: 'valid' });
    const before = await answers(id, valid);
    expectClose(before.got, before.want);
    // The filter selects some samples but not all: both selections are checked.
    const wbc = (before.want.wbc as { counts: { sampleCount: number } }).counts.sampleCount;
    expect(wbc).toBeGreaterThan(0);
    expect(wbc).toBeLessThan(valid.images.length);
    const r0 = (await env.dv.datasets.get(id)).revision;
    expect(await rows('sample_categories', id)).toEqual([{ revision: r0, n: pairsOf(valid) }]);

    await ingest(RBC('test').annotations, RBC('test').images, { format: 'coco', split: 'test', into: id });
    const r1 = (await env.dv.datasets.get(id)).revision;
    expect(r1).toBeGreaterThan(r0);
    const after = await answers(id, joined(valid, test));
    expectClose(after.got, after.want);
    expect(after.got).not.toEqual(before.got);
    // The older revision's rows went with the build of the new one.
    expect(await rows('sample_categories', id)).toEqual([{ revision: r1, n: pairsOf(valid) + pairsOf(test) }]);
    expect((await rows('field_stats', id)).map((r) => r.revision)).toEqual([r1]);
    expect((await rows('category_pairs', id)).map((r) => r.revision)).toEqual([r1]);
  });

  it('built in several ranges of samples (as large datasets are), answer the same', async () => {
    const valid = readJson<Coco>(RBC('valid').annotations);
    const chunk = buildOptions.chunkSamples;
    buildOptions.chunkSamples = 7; // the file's 20 images in 3 ranges
    try {
      const id = await ingest(RBC('valid').annotations, RBC('valid').images, { format: 'coco' });
      const { got, want } = await answers(id, valid);
      expectClose(got, want);
      expect(await rows('sample_categories', id)).toEqual([{ revision: 0, n: pairsOf(valid) }]);
    } finally {
      buildOptions.chunkSamples = chunk;
    }
  });

  it('filtered co-occurrence is exact whether the selection holds more or less than half the (sample, category) rows', async () => {
    // Past half, the pairs of the other samples are taken from every sample's: both ways are checked.
    const coco = readJson<Coco>(DEMO.annotations);
    const id = await ingest(DEMO.annotations, DEMO.images);
    const rowsOf = (images: Set<number>) => new Set(coco.annotations.filter((a) => images.has(a.image_id)).map((a) => `${a.image_id}/${a.category_id}`)).size;
    const all = rowsOf(new Set(coco.images.map((i) => i.id)));
    const shares: number[] = [];
    // Each category alone, and each two together (a larger selection).
    const names = coco.categories.map((c) => c.name);
    const filters = [...names.map((n) => [n]), ...names.flatMap((n, i) => names.slice(i + 1).map((m) => [n, m]))];
    for (const categories of filters) {
      const s = select(coco, categories);
      shares.push(rowsOf(new Set(s.images.map((i) => i.id))) / all);
      const got = await env.dv.aggregations.cooccurrence(await env.dv.aggregations.target(id, { categories }), 1000);
      expect(got, categories.join('+')).toEqual(cooccurrence(coco, s, 1000));
    }
    expect(Math.max(...shares)).toBeGreaterThan(0.5);
    expect(Math.min(...shares)).toBeLessThan(0.5);
  });

  it('of a deleted dataset go with the next build', async () => {
    const gone = await ingest(DEMO.annotations, DEMO.images);
    await env.dv.aggregations.cooccurrence(await env.dv.aggregations.target(gone, {}));
    expect((await rows('sample_categories', gone)).length).toBe(1);
    await env.dv.datasets.delete(gone);
    const other = await ingest(DEMO.annotations, DEMO.images);
    await env.dv.aggregations.cooccurrence(await env.dv.aggregations.target(other, {}));
    for (const table of ['summary_builds', 'sample_categories', 'category_pairs']) expect(await rows(table, gone), table).toEqual([]);
  });

  it('a revision a read holds keeps its rows through a build of the next; released, the build after drops them', async () => {
    const id = await ingest(RBC('valid').annotations, RBC('valid').images, { format: 'coco', split: 'valid' });
    const need = [{ labelSet: 0, part: 'categories' as const }];
    const held = (await leaseSummaries(env.dv.db, id, need))!;
    // A change of the ground truth's annotations: another split added to it.
    await ingest(RBC('test').annotations, RBC('test').images, { format: 'coco', split: 'test', into: id });
    const next = (await leaseSummaries(env.dv.db, id, need))!;
    const [before, after] = [held.revisions.get(0)!, next.revisions.get(0)!];
    expect(after).toBeGreaterThan(before);
    expect((await rows('sample_categories', id)).map((r) => r.revision)).toEqual([before, after]);
    held.release();
    next.release();
    // Any build (here another part's) drops what no read holds.
    (await leaseSummaries(env.dv.db, id, [{ labelSet: 0, part: 'bbox_area' }]))!.release();
    expect((await rows('sample_categories', id)).map((r) => r.revision)).toEqual([after]);
    expect(await leaseSummaries(env.dv.db, 'aaaaaaaaaaaaaaaa', need)).toBeNull();
    expect(await leaseSummaries(env.dv.db, id, [{ labelSet: 7, part: 'categories' }])).toBeNull();
  });

  it('outlive a change that leaves the annotations as they are (a tag): nothing is built again, and the answers stay exact', async () => {
    const coco = readJson<Coco>(RBC('valid').annotations);
    const id = await ingest(RBC('valid').annotations, RBC('valid').images, { format: 'coco' });
    const first = await answers(id, coco);
    expectClose(first.got, first.want);
    const builds = await env.dv.db.query('SELECT revision, label_set, part FROM summary_builds WHERE dataset_id = $1 ORDER BY ALL', [id]);
    expect(builds.map((b) => b.part).sort()).toEqual(['bbox_area', 'categories', 'relative_size']);
    const r0 = (await env.dv.datasets.get(id)).revision;
    await env.dv.tags.tagSamples(id, { sampleIds: [coco.images[0]!.id] }, ['checked']);
    expect((await env.dv.datasets.get(id)).revision).toBeGreaterThan(r0);
    const { got, want } = await answers(id, coco);
    expectClose(got, want);
    expect(await env.dv.db.query('SELECT revision, label_set, part FROM summary_builds WHERE dataset_id = $1 ORDER BY ALL', [id])).toEqual(builds);
    // A tag filter selects through the tags, which the summaries do not hold: its answer is exact too.
    const t = await env.dv.aggregations.target(id, { tags: ['checked'] });
    expect(await env.dv.aggregations.counts(t)).toEqual({ sampleCount: 1, annotationCount: coco.annotations.filter((a) => a.image_id === coco.images[0]!.id).length });
  });

  it('of a prediction run are its own: built at its revision, gone with the run, and not mistaken for a run imported under its number', async () => {
    const coco = readJson<Coco>(DEMO.annotations);
    const id = await ingest(DEMO.annotations, DEMO.images);
    const importRun = async (keep: (k: number) => boolean) => {
      const predictions = coco.annotations.filter((_, k) => keep(k)).map((a, k) => ({ image_id: a.image_id, category_id: a.category_id, bbox: a.bbox, score: (k % 10) / 10 + 0.05 }));
      const file = path.join(env.dir, 'summaries-run.json');
      fs.writeFileSync(file, JSON.stringify(predictions));
      const done = (await importAll(env.dv, { datasetId: id, resultsPath: file, name: 'run' })).at(-1)!;
      if (done.stage !== 'complete') throw new Error(done.message);
      const want = new Map<number, number>();
      for (const p of predictions) want.set(p.category_id, (want.get(p.category_id) ?? 0) + 1);
      return want;
    };
    const counted = async () => new Map((await env.dv.aggregations.categories(await env.dv.aggregations.target(id, {}, 'run'))).map((c) => [c.categoryId, c.count]));
    const builds = async () => (await env.dv.db.query('SELECT label_set, revision FROM summary_builds WHERE dataset_id = $1 ORDER BY ALL', [id])).map((r) => [r.label_set, r.revision]);

    const first = await importRun((k) => k % 2 === 0);
    expect(await counted()).toEqual(first);
    const [[set, revision]] = (await builds()) as [number, number][];
    expect(set).toBe(1);

    // Replaced at once, no build between: the next run takes the deleted one's number (the largest
    // + 1), while the old rows are still there. Its summaries are built anew, and the old go.
    await env.dv.predictions.delete(id, 'run');
    const second = await importRun((k) => k % 3 === 0);
    expect(second).not.toEqual(first);
    expect(await counted()).toEqual(second);
    const again = await builds();
    expect(again).toHaveLength(1);
    expect(again[0]![0]).toBe(1);
    expect(again[0]![1]).toBeGreaterThan(revision);

    // Deleted, its rows go with the next build (here the ground truth's).
    await env.dv.predictions.delete(id, 'run');
    await env.dv.aggregations.cooccurrence(await env.dv.aggregations.target(id, {}));
    expect((await builds()).map(([l]) => l)).toEqual([0]);
  });
});
