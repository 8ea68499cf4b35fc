import { jsonColumn as json, trimWindow, type Database, type Row } from '../db/connection.js';
import { countDatasetRows, deleteDatasetRows, getDatasetRow, getDatasetRows, listCategoryRows, listDatasetIds, listDatasetRows, pageDatasetRows, type DatasetKey, type DatasetWindow } from '../db/datasets.js';
import type { Warning } from '../db/dataset-writer.js';
import { NotFoundError } from '../errors.js';
import { checkPageSize } from './samples.js';
import type { ThumbnailService } from '../images/thumbnails.js';

export type { DatasetKey, DatasetWindow, Warning };

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
   * A dataset and its categories never change after its ingest commits, and every page, count,
   * annotation list and thumbnail miss needs them: they are read once and then answered from
   * memory. Ids of deleted datasets are remembered (ids are never reused) so a lookup racing a
   * delete cannot cache a dead entry.
   */
  private readonly cache = new Map<string, Dataset>();
  /** Lookups in flight are shared: a page asks for a dataset's categories from two places at once. */
  private readonly categoryLists = new Map<string, Promise<Category[]>>();
  /** get() lookups in flight, shared the same way. */
  private readonly lookups = new Map<string, Promise<Dataset>>();
  private readonly deleted = new Set<string>();

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
    const lookup = getDatasetRow(this.db, id)
      .then((row) => {
        // A lookup that began before a delete committed must not hand out the deleted dataset.
        if (!row || this.deleted.has(id)) throw new NotFoundError('dataset', id);
        return this.remember(toDataset(row));
      })
      .finally(() => {
        if (this.lookups.get(id) === lookup) this.lookups.delete(id);
      });
    this.lookups.set(id, lookup);
    return lookup;
  }

  /** For DataLoader: one result per id, in order, an Error for an unknown id; one query for the misses. */
  async getMany(ids: readonly string[]): Promise<(Dataset | Error)[]> {
    const misses = ids.filter((id) => !this.cache.has(id));
    const found = new Map<string, Dataset>();
    if (misses.length > 0) for (const r of await getDatasetRows(this.db, misses)) found.set(r.id as string, this.remember(toDataset(r)));
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
        // Not kept: a failed lookup, a deleted dataset, and an empty list unless the dataset is
        // known (it may be one still being ingested).
        const drop = () => this.categoryLists.get(id) === list && this.categoryLists.delete(id);
        list.then((l) => (this.deleted.has(id) || (l.length === 0 && !this.cache.has(id))) && drop(), drop);
      }
    }
    return Promise.all(datasetIds.map((id, i) => known[i] ?? fresh.get(id)!));
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
