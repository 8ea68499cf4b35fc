import { DataVisorError } from '../errors.js';
import { isDatasetId } from '../ids.js';
import { A, ANN_TEXT, textAt, type Columns } from '../records/columns.js';
import type { ChunkedAppender } from './chunked-appender.js';
import type { Database, Row, Transaction } from './connection.js';
import { deleteEvaluations } from './evaluations.js';
import { ANNOTATION_STORED_COLUMNS } from './schema.js';

/** Positions in the file, numbered 0..n-1 as read; checked against the dataset before anything is stored. */
const STAGED_COLUMNS = `ord INTEGER NOT NULL, annotation_id DOUBLE NOT NULL, image_id DOUBLE NOT NULL, category_id DOUBLE NOT NULL,
  bbox_x DOUBLE, bbox_y DOUBLE, bbox_w DOUBLE, bbox_h DOUBLE, area DOUBLE, kind segmentation_kind NOT NULL,
  polygon_count INTEGER NOT NULL, point_count INTEGER NOT NULL, score DOUBLE NOT NULL, segmentation VARCHAR`;

const EXAMPLES = 5;

export interface PredictionRunRow {
  name: string;
  labelSet: number;
  predictionCount: number;
  sourcePath: string | null;
  createdAt: Date;
  ordBase: number;
}

const LIST_RUNS = `SELECT label_set, name, annotation_count, source_path, epoch_ms(created_at) AS created_ms, ord_base
  FROM label_sets WHERE dataset_id = $1 AND kind = 'predictions' ORDER BY created_at, label_set`;
const LIST_RUNS_OF = `SELECT dataset_id, label_set, name, annotation_count, source_path, epoch_ms(created_at) AS created_ms, ord_base
  FROM label_sets WHERE list_contains($1::VARCHAR[], dataset_id) AND kind = 'predictions' ORDER BY created_at, label_set`;

const toRun = (r: Row): PredictionRunRow => ({
  name: r.name as string,
  labelSet: r.label_set as number,
  predictionCount: r.annotation_count as number,
  sourcePath: (r.source_path as string | null) ?? null,
  createdAt: new Date(r.created_ms as number),
  ordBase: r.ord_base as number,
});

export async function listPredictionRuns(db: Database, datasetId: string): Promise<PredictionRunRow[]> {
  return (await db.query(LIST_RUNS, [datasetId])).map(toRun);
}

/** Runs of many datasets in one query, per dataset in the order given. */
export async function listPredictionRunsOf(db: Database, datasetIds: readonly string[]): Promise<PredictionRunRow[][]> {
  const byDataset = new Map<string, PredictionRunRow[]>(datasetIds.map((id) => [id, []]));
  for (const r of await db.query(LIST_RUNS_OF, [datasetIds])) byDataset.get(r.dataset_id as string)?.push(toRun(r));
  return datasetIds.map((id) => byDataset.get(id)!);
}

/** Every row of one prediction run, inside a change of its dataset; false when there is no such run. */
export async function deletePredictionRun(tx: Transaction, datasetId: string, name: string): Promise<boolean> {
  const [run] = await tx.query(`SELECT label_set FROM label_sets WHERE dataset_id = $1 AND name = $2 AND kind = 'predictions'`, [datasetId, name]);
  if (!run) return false;
  await deleteLabelSet(tx, datasetId, run.label_set as number);
  return true;
}

async function deleteLabelSet(tx: Transaction, datasetId: string, labelSet: number): Promise<void> {
  await deleteEvaluations(tx, datasetId, { labelSet });
  for (const table of ['annotation_shapes', 'annotation_tags']) {
    await tx.run(`DELETE FROM ${table} WHERE dataset_id = $1 AND ord IN (SELECT ord FROM annotations WHERE dataset_id = $1 AND label_set = $2)`, [datasetId, labelSet]);
  }
  await tx.run(`DELETE FROM annotations WHERE dataset_id = $1 AND label_set = $2`, [datasetId, labelSet]);
  await tx.run(`DELETE FROM label_sets WHERE dataset_id = $1 AND label_set = $2`, [datasetId, labelSet]);
}

/**
 * Writes one prediction run inside a change of its dataset. Detections are staged in file order,
 * then checked against the dataset (every image_id and category_id must be the dataset's), then
 * stored beside the ground truth as a label set of their own, sorted by sample as the ground
 * truth is, so a page's predictions are a narrow range too. Their `ord`s follow every ord the
 * dataset holds (`ord_base` + position in the file): unique in the dataset, and the file order kept.
 */
export class PredictionWriter {
  private staged: ChunkedAppender | null = null;
  private count = 0;

  private constructor(
    private readonly tx: Transaction,
    private readonly datasetId: string,
    private readonly name: string,
    private readonly sourcePath: string,
  ) {}

  /** CONFLICT when the run exists, unless `replace`: then its rows go in the same transaction. */
  static async begin(tx: Transaction, datasetId: string, name: string, options: { replace: boolean; sourcePath: string }): Promise<PredictionWriter> {
    if (!isDatasetId(datasetId)) throw new DataVisorError('INTERNAL', `bad dataset id ${datasetId}`);
    const [existing] = await tx.query(`SELECT label_set, kind FROM label_sets WHERE dataset_id = $1 AND name = $2`, [datasetId, name]);
    if (existing) {
      if (existing.kind !== 'predictions') throw new DataVisorError('BAD_USER_INPUT', `"${name}" names the dataset's ground truth; choose another name for the prediction run`);
      if (!options.replace) {
        throw new DataVisorError('CONFLICT', `dataset ${datasetId} already has a prediction run named "${name}"; choose another name, or replace it (replace: true, --replace)`);
      }
      await deleteLabelSet(tx, datasetId, existing.label_set as number);
    }
    const w = new PredictionWriter(tx, datasetId, name, options.sourcePath);
    await tx.run(`CREATE TABLE ${w.staging} (${STAGED_COLUMNS})`);
    w.staged = await tx.appender(w.staging);
    return w;
  }

  /** Per dataset: the id is one we made (checked in begin), never user text. */
  private get staging(): string {
    return `staging_pred_${this.datasetId}`;
  }

  append(c: Columns): void {
    const a = this.staged!;
    const n = c.nums;
    const seg = c.texts[ANN_TEXT.segmentation]!;
    for (let i = 0; i < c.count; i++) {
      const o = i * c.stride;
      a.num(0, this.count++);
      a.num(1, n[o + A.id]!);
      a.num(2, n[o + A.imageId]!);
      a.num(3, n[o + A.categoryId]!);
      a.num(4, n[o + A.x]!);
      a.num(5, n[o + A.y]!);
      a.num(6, n[o + A.w]!);
      a.num(7, n[o + A.h]!);
      a.num(8, n[o + A.area]!);
      a.num(9, n[o + A.kind]!);
      a.num(10, n[o + A.polygonCount]!);
      a.num(11, n[o + A.pointCount]!);
      a.num(12, n[o + A.score]!);
      a.text(13, textAt(seg, i));
      a.endRow();
    }
  }

  /** Checks the staged detections against the dataset and stores them; answers how many. */
  async finish(): Promise<number> {
    this.staged!.close();
    this.staged = null;
    const { tx, datasetId: ds } = this;
    const P = this.staging;
    await this.refuseUnknown(
      `SELECT p.ord, p.image_id AS v, count(*) OVER () AS n, count(DISTINCT p.image_id) OVER () AS d FROM ${P} p
       ANTI JOIN (SELECT image_id FROM samples WHERE dataset_id = $1) s ON p.image_id = s.image_id ORDER BY p.ord LIMIT ${EXAMPLES}`,
      'image_id', 'images',
    );
    await this.refuseUnknown(
      `SELECT p.ord, p.category_id AS v, count(*) OVER () AS n, count(DISTINCT p.category_id) OVER () AS d FROM ${P} p
       ANTI JOIN (SELECT category_id FROM categories WHERE dataset_id = $1) c ON p.category_id = c.category_id ORDER BY p.ord LIMIT ${EXAMPLES}`,
      'category_id', 'categories',
    );
    const [ids] = await tx.query(
      `SELECT coalesce((SELECT max(label_set) FROM label_sets WHERE dataset_id = $1), 0) + 1 AS label_set,
              coalesce((SELECT max(ord) FROM annotations WHERE dataset_id = $1), -1) + 1 AS ord_base`,
      [ds],
    );
    const labelSet = ids!.label_set as number;
    const ordBase = ids!.ord_base as number;
    if (ordBase + this.count > 2_147_483_647) {
      throw new DataVisorError('BAD_USER_INPUT', `dataset ${ds} would hold more than 2^31 annotations and predictions; delete prediction runs it no longer needs`);
    }
    await tx.run(
      `INSERT INTO annotations (${ANNOTATION_STORED_COLUMNS}, label_set)
       SELECT $1, s.ord, $2 + p.ord, p.annotation_id, p.image_id, p.category_id, p.bbox_x, p.bbox_y, p.bbox_w, p.bbox_h, p.area, false,
              p.kind, p.polygon_count, p.point_count, NULL, p.score, NULL, $3
       FROM ${P} p JOIN (SELECT ord, image_id FROM samples WHERE dataset_id = $1) s ON s.image_id = p.image_id
       ORDER BY s.ord, p.ord`,
      [ds, ordBase, labelSet],
    );
    await tx.run(`INSERT INTO annotation_shapes SELECT $1, $2 + ord, segmentation, NULL FROM ${P} WHERE segmentation IS NOT NULL`, [ds, ordBase]);
    await tx.run(
      // The revision the change commits at: its commit adds one.
      `INSERT INTO label_sets (dataset_id, label_set, name, kind, source_path, annotation_count, created_at, ord_base, revision)
       VALUES ($1, $2, $3, 'predictions', $4, $5, now(), $6, (SELECT revision + 1 FROM datasets WHERE id = $1))`,
      [ds, labelSet, this.name, this.sourcePath, this.count, ordBase],
    );
    await tx.run(`DROP TABLE ${P}`);
    return this.count;
  }

  private async refuseUnknown(sql: string, key: string, section: string): Promise<void> {
    const rows = await this.tx.query(sql, [this.datasetId]);
    if (rows.length === 0) return;
    const first = rows[0]!;
    const examples = rows.map((r) => `${key} ${r.v} at [${r.ord}]`).join(', ');
    throw new DataVisorError(
      'INVALID_RESULTS',
      `${first.n} prediction(s) name ${first.d} ${key} value(s) that are not in the dataset's ${section} (${examples}${Number(first.n) > rows.length ? ', …' : ''}); ` +
        `check that the results were made for this dataset`,
    );
  }
}
