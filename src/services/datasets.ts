import { jsonColumn as json, trimWindow, type Database, type Row } from './db/connection.js';
import { countDatasetRows, deleteDatasetRows, getDatasetRow, getDatasetRows, listCategoryRows, listDatasetRows, pageDatasetRows, type DatasetKey, type DatasetWindow } from './db/datasets.js';
import type { Warning } from './db/dataset-writer.js';
import { NotFoundError } from './errors.js';
import { checkPageSize } from './samples.js';
import type { ThumbnailService } from './thumbnails.js';

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

export class DatasetService {
  /**
   * A dataset never changes after its ingest commits, so get() answers from memory after the first
   * lookup (GET /samples and every thumbnail miss look their dataset up). Ids of deleted datasets
   * are remembered (ids are never reused) so a lookup racing a delete cannot cache a dead entry.
   */
  private readonly cache = new Map<string, Dataset>();
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

  async get(id: string): Promise<Dataset> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const row = await getDatasetRow(this.db, id);
    if (!row) throw new NotFoundError('dataset', id);
    const dataset = toDataset(row);
    if (!this.deleted.has(id)) this.cache.set(id, dataset);
    return dataset;
  }

  /** For DataLoader: one result per id, in order, an Error for an unknown id. */
  async getMany(ids: readonly string[]): Promise<(Dataset | Error)[]> {
    const byId = new Map((await getDatasetRows(this.db, ids)).map((r) => [r.id as string, toDataset(r)]));
    return ids.map((id) => byId.get(id) ?? new NotFoundError('dataset', id));
  }

  /** Categories of many datasets in one query, in category id order. */
  async categoriesOf(datasetIds: readonly string[]): Promise<Category[][]> {
    const rows = (await listCategoryRows(this.db, datasetIds)).map(toCategory);
    return datasetIds.map((id) => rows.filter((c) => c.datasetId === id));
  }

  /** Deletes every row of the dataset, then its cached thumbnails. */
  async delete(id: string): Promise<void> {
    this.cache.delete(id);
    if (!(await deleteDatasetRows(this.db, id))) throw new NotFoundError('dataset', id);
    this.deleted.add(id);
    this.cache.delete(id);
    await this.thumbnails?.removeDataset(id);
  }
}
