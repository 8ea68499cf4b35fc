import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../logger.js';

/** The plugin contract of docs/contract.md: hooks take one object, so new fields never break old plugins. */
export interface IngestContext {
  datasetId: string;
  datasetName: string;
  annotationPath: string;
  imageDir: string;
  split: string | null;
}

export interface PluginSample {
  image_id: number;
  file_name: string;
  width: number | null;
  height: number | null;
  split: string | null;
  metadata: Record<string, unknown>;
}

export interface IngestStats {
  dataset_id: string;
  image_count: number;
  annotation_count: number;
  category_count: number;
  warnings: { code: string; count: number }[];
  seconds: number;
}

/** Every hook also receives `log`, a logger tagged with the plugin's name. */
export interface HookArgs {
  log: Logger;
}

export interface Plugin {
  name: string;
  description?: string;
  onActivate?(args: HookArgs): unknown;
  onDeactivate?(args: HookArgs): unknown;
  onIngestStart?(args: HookArgs & { context: IngestContext }): unknown;
  onSampleIngested?(args: HookArgs & { context: IngestContext; sample: PluginSample }): unknown;
  onIngestComplete?(args: HookArgs & { context: IngestContext; stats: IngestStats }): unknown;
}

export interface PluginInfo {
  name: string;
  description: string | null;
  hooks: string[];
  source: string;
}

export interface PluginRunStats {
  calls: number;
  errors: number;
  timeouts: number;
  disabled: boolean;
}

export interface PluginHostOptions {
  /** Per call of onIngestStart / onIngestComplete / onActivate / onDeactivate. */
  hookTimeoutMs?: number;
  /** Per call of onSampleIngested. */
  sampleTimeoutMs?: number;
  /** Failures (throws or timeouts) of a plugin's per-sample hook before it is switched off for that ingest. */
  maxSampleFailures?: number;
}

const HOOKS = ['onActivate', 'onDeactivate', 'onIngestStart', 'onSampleIngested', 'onIngestComplete'] as const;

class HookTimeout extends Error {}

/**
 * Loads plugins and calls their hooks in isolation: a hook that throws or hangs is logged and
 * counted, and ingestion goes on. A hanging promise cannot be cancelled in JavaScript; it is
 * abandoned after its timeout.
 */
export class PluginHost {
  private readonly hookTimeoutMs: number;
  private readonly sampleTimeoutMs: number;
  private readonly maxSampleFailures: number;

  private constructor(
    readonly plugins: readonly { plugin: Plugin; source: string }[],
    private readonly log: Logger,
    options: PluginHostOptions,
  ) {
    this.hookTimeoutMs = options.hookTimeoutMs ?? 5000;
    this.sampleTimeoutMs = options.sampleTimeoutMs ?? 2000;
    this.maxSampleFailures = options.maxSampleFailures ?? 3;
  }

  static empty(log: Logger): PluginHost {
    return new PluginHost([], log, {});
  }

  /**
   * Each sub-folder of `dir` with an `index.js`/`index.mjs` (or its package.json `main`) is a
   * plugin. A folder that fails to load is logged and skipped: one broken plugin must not stop the server.
   */
  static async load(dir: string, log: Logger, options: PluginHostOptions = {}): Promise<PluginHost> {
    let entries: string[];
    try {
      entries = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new PluginHost([], log, options);
      throw e;
    }
    const loaded: { plugin: Plugin; source: string }[] = [];
    for (const name of entries) {
      const folder = path.join(dir, name);
      const entry = await findEntry(folder);
      if (!entry) continue;
      try {
        const mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
        const plugin = mod.default as Plugin | undefined;
        if (!plugin || typeof plugin !== 'object' || typeof plugin.name !== 'string' || !plugin.name) {
          log.error({ plugin: folder }, 'plugin skipped: its default export must be an object with a "name"');
          continue;
        }
        loaded.push({ plugin, source: entry });
      } catch (err) {
        log.error({ plugin: folder, err }, 'plugin skipped: it failed to load');
      }
    }
    const host = new PluginHost(loaded, log, options);
    for (const { plugin } of loaded) await host.call(plugin, 'onActivate', {});
    log.info({ plugins: loaded.map((p) => p.plugin.name) }, `${loaded.length} plugin(s) loaded from ${dir}`);
    return host;
  }

  list(): PluginInfo[] {
    return this.plugins.map(({ plugin, source }) => ({
      name: plugin.name,
      description: plugin.description ?? null,
      hooks: HOOKS.filter((h) => typeof plugin[h] === 'function'),
      source,
    }));
  }

  /** True when some plugin wants every sample; without one, ingestion skips the per-sample path entirely. */
  get hasSampleHooks(): boolean {
    return this.plugins.some(({ plugin }) => typeof plugin.onSampleIngested === 'function');
  }

  async ingestStart(context: IngestContext): Promise<void> {
    for (const { plugin } of this.plugins) await this.call(plugin, 'onIngestStart', { context });
  }

  async ingestComplete(context: IngestContext, stats: IngestStats): Promise<void> {
    for (const { plugin } of this.plugins) await this.call(plugin, 'onIngestComplete', { context, stats });
  }

  async deactivate(): Promise<void> {
    for (const { plugin } of this.plugins) await this.call(plugin, 'onDeactivate', {});
  }

  /** A per-ingest runner for onSampleIngested that counts failures and switches a failing plugin off. */
  sampleRunner(context: IngestContext): SampleHookRunner {
    return new SampleHookRunner(
      this.plugins.map((p) => p.plugin).filter((p) => typeof p.onSampleIngested === 'function'),
      context,
      this.log,
      this.sampleTimeoutMs,
      this.maxSampleFailures,
    );
  }

  private async call(plugin: Plugin, hook: (typeof HOOKS)[number], args: object): Promise<void> {
    const fn = plugin[hook] as ((a: object) => unknown) | undefined;
    if (typeof fn !== 'function') return;
    try {
      await withTimeout(() => fn.call(plugin, { ...args, log: this.log.child({ plugin: plugin.name }) }), this.hookTimeoutMs);
    } catch (err) {
      this.log.error({ plugin: plugin.name, hook, err: err instanceof HookTimeout ? undefined : err },
        err instanceof HookTimeout ? `plugin hook timed out after ${this.hookTimeoutMs} ms` : 'plugin hook failed');
    }
  }
}

export class SampleHookRunner {
  readonly stats: Record<string, PluginRunStats> = {};
  private readonly logs: Logger[];

  constructor(
    private readonly plugins: Plugin[],
    private readonly context: IngestContext,
    private readonly log: Logger,
    private readonly timeoutMs: number,
    private readonly maxFailures: number,
  ) {
    for (const p of plugins) this.stats[p.name] = { calls: 0, errors: 0, timeouts: 0, disabled: false };
    this.logs = plugins.map((p) => log.child({ plugin: p.name }));
  }

  /** Runs every plugin's hook on the sample in turn; returns the metadata they added (or null). */
  async run(sample: PluginSample): Promise<Record<string, unknown> | null> {
    let metadata: Record<string, unknown> | null = null;
    for (let i = 0; i < this.plugins.length; i++) {
      const plugin = this.plugins[i]!;
      const s = this.stats[plugin.name]!;
      if (s.disabled) continue;
      s.calls++;
      try {
        const out = await withTimeout(() => plugin.onSampleIngested!({ context: this.context, sample, log: this.logs[i]! }), this.timeoutMs);
        const added = (out as { metadata?: unknown } | undefined)?.metadata;
        if (added && typeof added === 'object' && !Array.isArray(added)) {
          metadata = { ...(metadata ?? {}), ...(added as Record<string, unknown>) };
          sample = { ...sample, metadata: { ...sample.metadata, ...(added as Record<string, unknown>) } };
        }
      } catch (err) {
        if (err instanceof HookTimeout) s.timeouts++;
        else s.errors++;
        const failures = s.errors + s.timeouts;
        if (failures <= this.maxFailures) {
          this.log.error({ plugin: plugin.name, hook: 'onSampleIngested', file_name: sample.file_name, err: err instanceof HookTimeout ? undefined : err },
            err instanceof HookTimeout ? `plugin hook timed out after ${this.timeoutMs} ms` : 'plugin hook failed');
        }
        if (failures >= this.maxFailures) {
          s.disabled = true;
          this.log.error({ plugin: plugin.name, hook: 'onSampleIngested' }, `plugin hook switched off for this ingest after ${failures} failures`);
        }
      }
    }
    return metadata;
  }
}

/** Calls fn; a synchronous result costs no timer, a promise races one. */
async function withTimeout(fn: () => unknown, ms: number): Promise<unknown> {
  const out = fn();
  if (!out || typeof (out as Promise<unknown>).then !== 'function') return out;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      out as Promise<unknown>,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new HookTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function findEntry(folder: string): Promise<string | null> {
  try {
    const pkg = JSON.parse(await fs.readFile(path.join(folder, 'package.json'), 'utf8')) as { main?: string; exports?: unknown };
    if (typeof pkg.main === 'string') return path.join(folder, pkg.main);
  } catch {
    // No package.json (or no main): fall back to an index file.
  }
  for (const f of ['index.js', 'index.mjs']) {
    try {
      await fs.access(path.join(folder, f));
      return path.join(folder, f);
    } catch {
      // Try the next name.
    }
  }
  return null;
}
