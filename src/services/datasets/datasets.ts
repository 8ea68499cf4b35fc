import { jsonColumn as json, trimWindow, type Database, type Row, type Transaction } from '../db/connection.js';
import { beginDatasetChange, countDatasetRows, deleteDatasetRows, getDatasetRow, getDatasetRows, listCategoryRows, listDatasetIds, listDatasetRows, pageDatasetRows, type DatasetChange, type DatasetKey, type DatasetWindow } from '../db/datasets.js';
import type { Warning } from '../db/dataset-writer.js';
import { BadInputError, isDataVisorError, NotFoundError } from '../errors.js';
import { isDatasetId } from '../ids.js';
import { checkPageSize } from './paging.js';
import type { ThumbnailService } from '../images/thumbnails.js';

export type { DatasetChange, DatasetKey, DatasetWindow, Warning };

export interface Dataset {
  id: string;
  name: string;
  format: string;
  sourcePath: string;
  imageDir: string;
  split: string | null;
  imageCount: number;
  annotationCount: number;
  categoryCount: number;
  createdAt: Date;
  info: Record<string, unknown> | null;
  warnings: Warning[];
  pluginStats: Record<string, unknown> | null;
  bytes: number;
  ingestSeconds: number;
  /**
   * 0 at ingest; every later change of the dataset's rows (predictions, tags…) adds one. Whatever
   * is derived from the dataset's content (cached pages, ETags, cursors) is keyed on it.
   */
  revision: number;
}

export interface Category {
  datasetId: string;
  categoryId: number;
  name: string;
  supercategory: string | null;
  annotationCount: number;
  imageCount: number;
  extra: Record<string, unknown> | null;
}

function toDataset(r: Row): Dataset {
  return {
    id: r.id as string,
    name: r.name as string,
    format: r.format as string,
    sourcePath: r.source_path as string,
    imageDir: r.image_dir as string,
    split: (r.split as string | null) ?? null,
    imageCount: r.image_count as number,
    annotationCount: r.annotation_count as number,
    categoryCount: r.category_count as number,
    createdAt: new Date(r.created_ms as number),
    info: json(r.info),
    warnings: json<Warning[]>(r.warnings) ?? [],
    pluginStats: json(r.plugin_stats),
    bytes: r.bytes as number,
    ingestSeconds: r.ingest_seconds as number,
    revision: (r.revision as number | null) ?? 0,
  };
}

/** The sort key of the newest-first order: what a keyset cursor over datasets carries. */
export function datasetKey(d: Dataset): DatasetKey {
  return { createdMs: d.createdAt.getTime(), id: d.id };
}

function toCategory(r: Row): Category {
  return {
    datasetId: r.dataset_id as string,
    categoryId: r.category_id as number,
    name: r.name as string,
    supercategory: (r.supercategory as string | null) ?? null,
    annotationCount: r.annotation_count as number,
    imageCount: r.image_count as number,
    extra: json(r.extra),
  };
}

/** Datasets (and category lists) kept in memory; past this many the cache starts over. */
const MAX_CACHED_DATASETS = 1000;

export class DatasetService {
  /**
   * Every page, count, annotation list and thumbnail miss needs its dataset and categories: they
   * are read once and then answered from memory. Every change goes through change() (or delete()),
   * in this process (DuckDB lets one process write a file), which drops them. Ids of deleted
   * datasets are remembered (ids are never reused) so a lookup racing a delete cannot cache a
   * dead entry.
   */
  private readonly cache = new Map<string, Dataset>();
  /** Lookups in flight are shared: a page asks for a dataset's categories from two places at once. */
  private readonly categoryLists = new Map<string, Promise<Category[]>>();
  /** get() lookups in flight, shared the same way. */
  private readonly lookups = new Map<string, Promise<Dataset>>();
  private readonly deleted = new Set<string>();
  /** Changes ended per dataset since start: a lookup that began before one must not be cached. */
  private readonly changes = new Map<string, number>();
  /** The change of each dataset running or waiting last: the next one waits for it. */
  private readonly changing = new Map<string, Promise<void>>();

  constructor(
    private readonly db: Database,
    private readonly thumbnails: ThumbnailService | null,
  ) {}

  /** Newest first. */
  async list(): Promise<Dataset[]> {
    return (await listDatasetRows(this.db)).map(toDataset);
  }

  /**
   * A keyset window of the newest-first list (`after` goes to older datasets, `before` to newer
   * ones), in list order, and whether more lie beyond it in its direction. The key of a dataset
   * is `datasetKey(d)`.
   */
  async page(window: DatasetWindow): Promise<{ datasets: Dataset[]; hasMore: boolean }> {
    checkPageSize('limit', window.limit);
    const rows = await pageDatasetRows(this.db, window);
    const { hasMore } = trimWindow(rows, window.limit, window.kind);
    return { datasets: rows.map(toDataset), hasMore };
  }

  async count(): Promise<number> {
    return countDatasetRows(this.db);
  }

  /** Every dataset id. */
  async ids(): Promise<Set<string>> {
    return new Set(await listDatasetIds(this.db));
  }

  /** True when the dataset is known to exist without a query (it was looked up since it committed). */
  isKnown(id: string): boolean {
    return this.cache.has(id);
  }

  async get(id: string): Promise<Dataset> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    // A page of thumbnail misses asks for its dataset from every request at once: one query.
    const running = this.lookups.get(id);
    if (running) return running;
    const seen = this.changes.get(id);
    const lookup = getDatasetRow(this.db, id)
      .then((row) => {
        // A lookup that began before a delete committed must not hand out the deleted dataset.
        if (!row || this.deleted.has(id)) throw new NotFoundError('dataset', id);
        const dataset = toDataset(row);
        return this.changes.get(id) === seen ? this.remember(dataset) : dataset;
      })
      .finally(() => {
        if (this.lookups.get(id) === lookup) this.lookups.delete(id);
      });
    this.lookups.set(id, lookup);
    return lookup;
  }

  /**
   * A dataset named by its id or by its name (the CLI takes either): NOT_FOUND when nothing has
   * that id or name, BAD_USER_INPUT when several datasets share the name.
   */
  async resolve(ref: string): Promise<Dataset> {
    if (isDatasetId(ref)) {
      const byId = await this.get(ref).catch((e: unknown) => (isDataVisorError(e) && e.code === 'NOT_FOUND' ? null : Promise.reject(e)));
      if (byId) return byId;
    }
    const named = (await this.list()).filter((d) => d.name === ref);
    if (named.length === 1) return named[0]!;
    if (named.length === 0) throw new NotFoundError('dataset', ref);
    throw new BadInputError(`${named.length} datasets are named ${JSON.stringify(ref)} (${named.map((d) => d.id).join(', ')}); name one by its id`);
  }

  /** For DataLoader: one result per id, in order, an Error for an unknown id; one query for the misses. */
  async getMany(ids: readonly string[]): Promise<(Dataset | Error)[]> {
    const misses = ids.filter((id) => !this.cache.has(id));
    const found = new Map<string, Dataset>();
    const seen = new Map(misses.map((id) => [id, this.changes.get(id)]));
    for (const r of misses.length > 0 ? await getDatasetRows(this.db, misses) : []) {
      const dataset = toDataset(r);
      found.set(dataset.id, this.changes.get(dataset.id) === seen.get(dataset.id) ? this.remember(dataset) : dataset);
    }
    return ids.map((id) => this.cache.get(id) ?? found.get(id) ?? new NotFoundError('dataset', id));
  }

  /** The categories of a dataset, in category id order (empty for an unknown dataset). */
  async categories(datasetId: string): Promise<Category[]> {
    return (await this.categoriesOf([datasetId]))[0]!;
  }

  /** Categories of many datasets, in category id order; one query for those not in memory. */
  async categoriesOf(datasetIds: readonly string[]): Promise<Category[][]> {
    const known = datasetIds.map((id) => this.categoryLists.get(id));
    const misses = [...new Set(datasetIds.filter((_, i) => !known[i]))];
    const fresh = new Map<string, Promise<Category[]>>();
    if (misses.length > 0) {
      const seen = new Map(misses.map((id) => [id, this.changes.get(id)]));
      const batch = listCategoryRows(this.db, misses).then((rows) => {
        const byDataset = new Map<string, Category[]>(misses.map((id) => [id, []]));
        for (const r of rows) byDataset.get(r.dataset_id as string)!.push(toCategory(r));
        return byDataset;
      });
      if (this.categoryLists.size + misses.length > MAX_CACHED_DATASETS) this.categoryLists.clear();
      for (const id of misses) {
        const list = batch.then((byDataset) => byDataset.get(id)!);
        fresh.set(id, list);
        this.categoryLists.set(id, list);
        // Not kept: a failed lookup, a deleted or since changed dataset, and an empty list unless
        // the dataset is known (it may be one still being ingested).
        const drop = () => this.categoryLists.get(id) === list && this.categoryLists.delete(id);
        const stale = (l: Category[]) => this.deleted.has(id) || this.changes.get(id) !== seen.get(id) || (l.length === 0 && !this.cache.has(id));
        list.then((l) => stale(l) && drop(), drop);
      }
    }
    return Promise.all(datasetIds.map((id, i) => known[i] ?? fresh.get(id)!));
  }

  /**
   * Waits for this dataset's turn: changes of one dataset run one after another. The answer ends
   * the turn; it drops what was cached of the dataset (call it once the change committed or rolled
   * back, also after a failed commit: it may have committed before failing to answer).
   */
  async turn(id: string): Promise<() => void> {
    const before = this.changing.get(id);
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    const queue = (before ?? Promise.resolve()).then(() => turn);
    this.changing.set(id, queue);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.changes.set(id, (this.changes.get(id) ?? 0) + 1);
      this.forget(id);
      if (this.changing.get(id) === queue) this.changing.delete(id);
      release();
    };
    await before;
    return end;
  }

  /**
   * Begins a change of a dataset's rows, for work that yields between its steps (an import that
   * reports progress). Changes of one dataset run one after another: this waits for the one
   * before to end. What was cached of the dataset is dropped when the change ends, committed or
   * not. NOT_FOUND, with nothing begun, for an unknown dataset.
   */
  async openChange(id: string): Promise<DatasetChange> {
    const end = await this.turn(id);
    let change: DatasetChange | null;
    try {
      change = await beginDatasetChange(this.db, id);
    } catch (e) {
      end();
      throw e;
    }
    if (!change) {
      end();
      throw new NotFoundError('dataset', id);
    }
    const open = change;
    return {
      tx: open.tx,
      commit: (options) => open.commit(options).finally(end),
      rollback: () => open.rollback().finally(end),
    };
  }

  /**
   * Changes a dataset's rows: `work` runs in one transaction that also bumps the dataset's
   * revision (and with `recount`, recomputes its stored counts). NOT_FOUND, with nothing changed,
   * for an unknown dataset.
   */
  async change<T>(id: string, work: (tx: Transaction) => Promise<T>, options: { recount?: boolean } = {}): Promise<{ result: T; revision: number }> {
    const change = await this.openChange(id);
    try {
      const result = await work(change.tx);
      return { result, revision: await change.commit(options) };
    } finally {
      await change.rollback();
    }
  }

  /** Deletes every row of the dataset, then its cached thumbnails. */
  async delete(id: string): Promise<void> {
    this.forget(id);
    if (!(await deleteDatasetRows(this.db, id))) throw new NotFoundError('dataset', id);
    this.deleted.add(id);
    this.forget(id);
    await this.thumbnails?.removeDataset(id);
  }

  private remember(dataset: Dataset): Dataset {
    if (!this.deleted.has(dataset.id)) {
      if (this.cache.size >= MAX_CACHED_DATASETS) this.cache.clear();
      this.cache.set(dataset.id, dataset);
    }
    return dataset;
  }

  private forget(id: string): void {
    this.cache.delete(id);
    this.categoryLists.delete(id);
    this.lookups.delete(id);
  }
}
