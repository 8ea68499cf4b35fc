import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO, ingestAll, openTestEnv, readJson, tempDir, type TestEnv } from '../helpers/env.js';

const EXAMPLE_DIR = path.resolve(import.meta.dirname, '../../plugins');
/** The demo dataset (tests/helpers/fixtures.ts): 128 images, landscape, portrait and square. */
const oracle = readJson<{ images: { id: number; width: number; height: number }[]; annotations: unknown[]; categories: unknown[] }>(DEMO.annotations);

type Call = { plugin: string; hook: string; [k: string]: unknown };
const g = globalThis as unknown as { __dvCalls?: Call[] };

function writePlugin(dir: string, name: string, source: string): void {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  fs.writeFileSync(path.join(dir, name, 'index.js'), source);
}

let env: TestEnv | null = null;
afterEach(async () => {
  await env?.close();
  env = null;
  delete g.__dvCalls;
});

describe('plugins/example', () => {
  it('loads with every hook and tags each sample with its aspect ratio', async () => {
    env = await openTestEnv({ DATAVISOR_PLUGIN_DIR: EXAMPLE_DIR });
    const [info] = env.dv.plugins.list();
    expect(info?.name).toBe('example');
    expect(info?.hooks.sort()).toEqual(['onActivate', 'onDeactivate', 'onIngestComplete', 'onIngestStart', 'onSampleIngested']);

    const events = await ingestAll(env.dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images });
    const done = events.at(-1)!;
    expect(done.stage).toBe('complete');
    const page = await env.dv.samples.page(done.dataset_id!, {}, { kind: 'offset', offset: 0, limit: 200 });
    expect(page.samples).toHaveLength(128);
    for (const s of page.samples) {
      const img = oracle.images.find((i) => i.id === s.id)!;
      const ratio = img.width / img.height;
      expect(s.metadata).toEqual({
        aspect_ratio: Math.round(ratio * 1000) / 1000,
        orientation: ratio > 1.05 ? 'landscape' : ratio < 0.95 ? 'portrait' : 'square',
      });
    }
    const ds = await env.dv.datasets.get(done.dataset_id!);
    expect(ds.pluginStats).toEqual({ example: { calls: 128, errors: 0, timeouts: 0, disabled: false } });
  });
});

describe('plugin isolation', () => {
  it('calls hooks in order with one object argument, and isolates throwing, hanging and broken plugins', async () => {
    const dir = tempDir('dv-plugins-');
    writePlugin(dir, 'a-recorder', `
      const calls = (globalThis.__dvCalls ??= []);
      export default {
        name: 'recorder',
        onActivate: (a) => { calls.push({ plugin: 'recorder', hook: 'onActivate', hasLog: typeof a.log?.info === 'function' }); },
        onIngestStart: ({ context }) => { calls.push({ plugin: 'recorder', hook: 'onIngestStart', context }); },
        onSampleIngested: async ({ sample }) => {
          calls.push({ plugin: 'recorder', hook: 'onSampleIngested', file_name: sample.file_name });
          return { ...sample, metadata: { ...sample.metadata, recorded: true } };
        },
        onIngestComplete: ({ stats }) => { calls.push({ plugin: 'recorder', hook: 'onIngestComplete', stats }); },
        onDeactivate: () => { calls.push({ plugin: 'recorder', hook: 'onDeactivate' }); },
      };`);
    writePlugin(dir, 'b-thrower', `
      export default {
        name: 'thrower',
        onIngestStart() { throw new Error('start boom'); },
        onSampleIngested() { throw new Error('sample boom'); },
        onIngestComplete() { throw new Error('complete boom'); },
      };`);
    writePlugin(dir, 'c-hanger', `
      export default {
        name: 'hanger',
        onIngestStart: () => new Promise(() => {}),
        onSampleIngested: () => new Promise(() => {}),
        onIngestComplete: () => new Promise(() => {}),
      };`);
    writePlugin(dir, 'd-broken', 'export default {{ syntax error');
    writePlugin(dir, 'e-nameless', 'export default { onIngestStart() {} };');
    fs.mkdirSync(path.join(dir, 'f-empty-folder'));

    env = await openTestEnv({ DATAVISOR_PLUGIN_DIR: dir }, { plugins: { hookTimeoutMs: 200, sampleTimeoutMs: 50, maxSampleFailures: 3 } });
    expect(env.dv.plugins.list().map((p) => p.name)).toEqual(['recorder', 'thrower', 'hanger']);

    const events = await ingestAll(env.dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images, datasetName: 'with-plugins' });
    const done = events.at(-1)!;
    expect(done.stage).toBe('complete');
    expect(done.image_count).toBe(128);
    expect(done.annotation_count).toBe(oracle.annotations.length);

    const calls = g.__dvCalls!;
    const hooks = calls.map((c) => c.hook);
    expect(hooks[0]).toBe('onActivate');
    expect(calls[0]!.hasLog).toBe(true);
    expect(hooks[1]).toBe('onIngestStart');
    expect(calls[1]!.context).toMatchObject({ datasetId: done.dataset_id, datasetName: 'with-plugins', split: null });
    expect(hooks.filter((h) => h === 'onSampleIngested')).toHaveLength(128);
    expect(hooks.at(-1)).toBe('onIngestComplete');
    expect(calls.at(-1)!.stats).toMatchObject({ dataset_id: done.dataset_id, image_count: 128, annotation_count: oracle.annotations.length, category_count: oracle.categories.length });

    // The recorder's metadata was stored although the two plugins after it failed on every sample.
    const page = await env.dv.samples.page(done.dataset_id!, {}, { kind: 'offset', offset: 0, limit: 200 });
    expect(page.samples.every((s) => s.metadata?.recorded === true)).toBe(true);

    const ds = await env.dv.datasets.get(done.dataset_id!);
    expect(ds.pluginStats).toEqual({
      recorder: { calls: 128, errors: 0, timeouts: 0, disabled: false },
      thrower: { calls: 3, errors: 3, timeouts: 0, disabled: true },
      hanger: { calls: 3, errors: 0, timeouts: 3, disabled: true },
    });

    await env.close();
    env = null;
    expect(g.__dvCalls!.at(-1)!.hook).toBe('onDeactivate');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('treats a missing plugin folder as no plugins', async () => {
    env = await openTestEnv({ DATAVISOR_PLUGIN_DIR: '/nonexistent/plugins' });
    expect(env.dv.plugins.list()).toEqual([]);
    expect(env.dv.plugins.hasSampleHooks).toBe(false);
    const events = await ingestAll(env.dv, { annotationPath: DEMO.annotations, imageDir: DEMO.images });
    expect(events.at(-1)!.stage).toBe('complete');
    expect((await env.dv.datasets.get(events.at(-1)!.dataset_id!)).pluginStats).toBeNull();
  });
});
