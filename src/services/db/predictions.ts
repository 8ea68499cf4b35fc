import { randomBytes } from 'node:crypto';
import { DataVisorError } from '../errors.js';
import { isDatasetId } from '../ids.js';
import { A, ANN_TEXT, textAt, type Columns } from '../records/columns.js';
import type { ChunkedAppender } from './chunked-appender.js';
import type { Database, OpenTransaction, Row, Transaction } from './connection.js';
import { deleteEvaluations } from './evaluations.js';
import type { YoloPredictionRows } from '../predictions/yolo-results.js';
import { ANNOTATION_STORED_COLUMNS } from './schema.js';

/**
 * Detections as read: `part` of the file (parse-results.ts) and position within it (`pos`); a
 * detection's position in the file (`ord`, 0..n-1, its annotation id ord + 1 as pycocotools
 * numbers results) follows once the counts of the parts are known. Checked against the dataset
 * before anything is stored.
 */
const STAGED_COLUMNS = `part INTEGER NOT NULL, pos INTEGER NOT NULL, image_id DOUBLE NOT NULL, category_id DOUBLE NOT NULL,
  bbox_x DOUBLE, bbox_y DOUBLE, bbox_w DOUBLE, bbox_h DOUBLE, area DOUBLE, kind segmentation_kind NOT NULL,
  polygon_count INTEGER NOT NULL, point_count INTEGER NOT NULL, score DOUBLE NOT NULL, segmentation VARCHAR`;

/** YOLO lines: matched to samples by file stem, in pixels once the sample (and its size) is known. */
const YOLO_STAGED_COLUMNS = `ord INTEGER NOT NULL, file VARCHAR NOT NULL, stem VARCHAR NOT NULL, line INTEGER NOT NULL, class DOUBLE NOT NULL,
  cx DOUBLE NOT NULL, cy DOUBLE NOT NULL, w DOUBLE NOT NULL, h DOUBLE NOT NULL, score DOUBLE NOT NULL`;

/**
 * The samples predictions may name (those of one split when one is given): the image id a results
 * file uses (the file's own, kept as metadata.file_image_id when `into` renumbered it) and the stem
 * a YOLO prediction file is named by. `$1` the dataset, `$2` the split or NULL.
 */
const TARGET_SAMPLES = `SELECT ord, image_id, width, height, file_name, split,
    coalesce(TRY_CAST(json_extract_string(metadata, '$.file_image_id') AS DOUBLE), image_id) AS file_image_id,
    regexp_replace(regexp_replace(file_name, '^.*/', ''), '\\.[^.]*$', '') AS stem
  FROM samples WHERE dataset_id = $1 AND ($2::VARCHAR IS NULL OR split = $2)`;

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
 * Writes one prediction run in three steps, so that the change of the dataset holds only the
 * final write. Detections are staged in file order in a scratch table of this import's own
 * (`begin`, `append`), committed; then checked against the dataset (`check`: every image_id and
 * category_id must be the dataset's) while a second scratch table gets each detection's sample
 * and final position; then, in a change of the dataset, stored beside the ground truth as a label
 * set of their own (`store`), sorted by sample as the ground truth is, so a page's predictions are
 * a narrow range too. Their `ord`s follow every ord the dataset holds (`ord_base` + position in
 * the file): unique in the dataset, and the file order kept. `discard` drops the scratch tables
 * (call it when the change has committed or failed); a process that dies first leaves them to
 * the next open (dropStagingTables).
 *
 * Why outside the change: DuckDB reads rows a transaction wrote itself ~4× slower than committed
 * ones; the final INSERT of 2.3M rows took ~11 s from a staging table of the change's own
 * transaction, 2.3 s from a committed one (docs/evaluation.md, "Import").
 */
export class PredictionWriter {
  private staged: ChunkedAppender | null = null;
  private yolo: ChunkedAppender | null = null;
  private count = 0;
  /** Detections staged per part of the file. */
  private partCounts: number[] = [];
  /** The dataset's revision the checks saw: the change checks again if it moved on. */
  private checkedRevision: number | null = null;

  private constructor(
    private readonly db: Database,
    /** The transaction the scratch tables are filled in; committed by check(). */
    private readonly stage: OpenTransaction,
    private readonly datasetId: string,
    private readonly name: string,
    private readonly sourcePath: string,
    private readonly replace: boolean,
    /** Unique per import, so that imports into one dataset stage side by side. */
    private readonly suffix: string,
  ) {}

  /** CONFLICT when the run exists, unless `replace` (store() checks again in the change). */
  static async begin(db: Database, datasetId: string, name: string, options: { replace: boolean; sourcePath: string; yolo?: boolean }): Promise<PredictionWriter> {
    if (!isDatasetId(datasetId)) throw new DataVisorError('INTERNAL', `bad dataset id ${datasetId}`);
    refuseName((await db.query(EXISTING_RUN, [datasetId, name]))[0], datasetId, name, options.replace);
    const stage = await db.begin();
    const w = new PredictionWriter(db, stage, datasetId, name, options.sourcePath, options.replace, randomBytes(6).toString('hex'));
    try {
      await stage.run(`CREATE TABLE ${w.table('p')} (${STAGED_COLUMNS})`);
      w.staged = await stage.appender(w.table('p'));
      if (options.yolo) {
        await stage.run(`CREATE TABLE ${w.table('y')} (${YOLO_STAGED_COLUMNS})`);
        w.yolo = await stage.appender(w.table('y'));
      }
    } catch (e) {
      await stage.rollback();
      throw e;
    }
    return w;
  }

  /**
   * `p` the detections as read, `y` YOLO lines, `f` the checked detections with their sample.
   * The dataset id is one we made (checked in begin), the suffix random hex: never user text.
   * Named `staging_…` as an ingest's staging tables are: what dropStagingTables sweeps.
   */
  private table(kind: 'p' | 'y' | 'f'): string {
    return `staging_${kind}pred_${this.datasetId}_${this.suffix}`;
  }

  /** YOLO prediction lines, numbered in the order given (files in name order, lines in file order). */
  appendYolo(r: YoloPredictionRows): void {
    const a = this.yolo!;
    for (let i = 0; i < r.count; i++) {
      a.num(0, this.count++);
      a.text(1, r.files[i]!);
      a.text(2, r.stems[i]!);
      a.num(3, r.lines[i]!);
      a.num(4, r.classes[i]!);
      a.num(5, r.cx[i]!);
      a.num(6, r.cy[i]!);
      a.num(7, r.w[i]!);
      a.num(8, r.h[i]!);
      a.num(9, r.scores[i]!);
      a.endRow();
    }
  }

  /** Detections read by `part` of the file, numbered within it (0: the first part, or the only one). */
  append(c: Columns, part = 0): void {
    const a = this.staged!;
    const n = c.nums;
    const seg = c.texts[ANN_TEXT.segmentation]!;
    let pos = this.partCounts[part] ?? 0;
    this.partCounts[part] = pos + c.count;
    this.count += c.count;
    for (let i = 0; i < c.count; i++) {
      const o = i * c.stride;
      a.num(0, part);
      a.num(1, pos++);
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

  /** A staged detection's position in the file (of `p`): its position in its part after the counts of the parts before. */
  private fileOrd(): string {
    if (this.partCounts.length <= 1) return 'p.pos';
    let base = 0;
    const offsets = Array.from(this.partCounts, (count = 0, part) => {
      const when = `WHEN ${part} THEN ${base}`;
      base += count;
      return when;
    });
    return `(p.pos + CASE p.part ${offsets.join(' ')} END)`;
  }

  /** Detections staged so far. */
  get stagedCount(): number {
    return this.count;
  }

  /** The file's split for parallel parsing did not hold: the later parts' rows go, and the first part reads them again. */
  async dropParts(): Promise<void> {
    this.staged!.flush();
    await this.stage.run(`DELETE FROM ${this.table('p')} WHERE part > 0`);
    this.partCounts = this.partCounts.slice(0, 1);
    this.count = this.partCounts[0] ?? 0;
  }

  /**
   * Commits the staged detections and checks them against the dataset. With `split`, image ids
   * (and YOLO file stems) are those of that split's samples, and a results file's image ids are
   * the ids its file gave them (metadata.file_image_id after `into`). Each detection gets its
   * sample and its position in the file in one join (`f`), which the checks then read.
   */
  async check(options: { split?: string | null } = {}): Promise<void> {
    const yolo = this.yolo !== null;
    this.staged!.close();
    this.yolo?.close();
    this.staged = this.yolo = null;
    await this.stage.commit();
    const ds = this.datasetId;
    const split = options.split ?? null;
    const P = this.table('p');
    const F = this.table('f');
    await this.db.transaction(async (tx) => {
      if (split !== null) {
        const [has] = await tx.query(`SELECT count(*) AS n FROM samples WHERE dataset_id = $1 AND split = $2`, [ds, split]);
        if (Number(has!.n) === 0) {
          const splits = await tx.query(`SELECT DISTINCT split FROM samples WHERE dataset_id = $1 AND split IS NOT NULL ORDER BY split`, [ds]);
          throw new DataVisorError('BAD_USER_INPUT', `dataset ${ds} has no split "${split}"; its splits are ${splits.map((r) => `"${r.split}"`).join(', ') || 'none'}`);
        }
      }
      if (yolo) await this.resolveYolo(tx, split);
      // A YOLO line's image is its file's, already resolved: matched by the dataset's image id.
      const key = split === null || yolo ? 'image_id' : 'file_image_id';
      await tx.run(
        `CREATE TABLE ${F} AS
         SELECT ${this.fileOrd()} AS ord, s.ord AS sample_ord, s.image_id AS sample_image_id, p.image_id, p.category_id,
                c.category_id IS NOT NULL AS known_category, p.bbox_x, p.bbox_y, p.bbox_w, p.bbox_h, p.area, p.kind,
                p.polygon_count, p.point_count, p.score, p.segmentation
         FROM ${P} p LEFT JOIN (${TARGET_SAMPLES}) s ON p.image_id = s.${key}
         LEFT JOIN (SELECT category_id FROM categories WHERE dataset_id = $1) c ON p.category_id = c.category_id`,
        [ds, split],
      );
      await refuseUnknown(tx, ds, F, 'sample_ord IS NULL', 'image_id', split === null ? 'images' : `images of split "${split}"`);
      await refuseUnknown(tx, ds, F, 'NOT known_category', 'category_id', 'categories');
      const [d] = await tx.query(`SELECT revision FROM datasets WHERE id = $1`, [ds]);
      this.checkedRevision = Number(d!.revision);
    });
    await this.drop(['p', 'y']);
  }

  /**
   * In a change of the dataset: the checked detections as a prediction run; answers how many.
   * Replaces the run of the same name when asked to (CONFLICT else). If the dataset changed
   * since check() (another change committed meanwhile), its samples and categories are checked
   * again: a detection whose sample or category went refuses the import.
   */
  async store(tx: Transaction): Promise<number> {
    const ds = this.datasetId;
    const F = this.table('f');
    const [existing] = await tx.query(EXISTING_RUN, [ds, this.name]);
    refuseName(existing, ds, this.name, this.replace);
    if (existing) await deleteLabelSet(tx, ds, existing.label_set as number);
    const [d] = await tx.query(`SELECT revision FROM datasets WHERE id = $1`, [ds]);
    if (Number(d!.revision) !== this.checkedRevision) {
      const [gone] = await tx.query(
        `SELECT count(*) AS n FROM ${F} f
         WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.dataset_id = $1 AND s.ord = f.sample_ord AND s.image_id = f.sample_image_id)
            OR NOT EXISTS (SELECT 1 FROM categories c WHERE c.dataset_id = $1 AND c.category_id = f.category_id)`,
        [ds],
      );
      if (Number(gone!.n) > 0) {
        throw new DataVisorError('CONFLICT', `dataset ${ds} changed during the import: ${gone!.n} prediction(s) name an image or category it no longer holds; import again`);
      }
    }
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
    // Sorted by sample, in file order within a sample (docs/storage.md): both keys are plain
    // integers of the scratch table, no join left in the change (docs/evaluation.md, "Import").
    await tx.run(
      `INSERT INTO annotations (${ANNOTATION_STORED_COLUMNS}, label_set)
       SELECT $1, sample_ord, $2 + ord, ord + 1, sample_image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, false,
              kind, polygon_count, point_count, NULL, score, NULL, $3
       FROM ${F} ORDER BY sample_ord, ord`,
      [ds, ordBase, labelSet],
    );
    await tx.run(`INSERT INTO annotation_shapes SELECT $1, $2 + ord, segmentation, NULL FROM ${F} WHERE segmentation IS NOT NULL`, [ds, ordBase]);
    await tx.run(
      // The revision the change commits at: its commit adds one.
      `INSERT INTO label_sets (dataset_id, label_set, name, kind, source_path, annotation_count, created_at, ord_base, revision)
       VALUES ($1, $2, $3, 'predictions', $4, $5, now(), $6, (SELECT revision + 1 FROM datasets WHERE id = $1))`,
      [ds, labelSet, this.name, this.sourcePath, this.count, ordBase],
    );
    return this.count;
  }

  /** Drops what is left of the scratch tables (the staging transaction too, if still open). Safe to call more than once. */
  async discard(): Promise<void> {
    this.staged = this.yolo = null;
    await this.stage.rollback(); // discards its appenders' rows; nothing after commit

    await this.drop(['p', 'y', 'f']);
  }

  private async drop(kinds: ('p' | 'y' | 'f')[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const k of kinds) await tx.run(`DROP TABLE IF EXISTS ${this.table(k)}`);
    });
  }

  /**
   * YOLO lines → staged detections: each file's stem names one sample (of the split, when given),
   * its class is the category id (what the YOLO reader assigns: the class index), and its
   * normalised box becomes pixels of the sample's size.
   */
  private async resolveYolo(tx: Transaction, split: string | null): Promise<void> {
    const Y = this.table('y');
    const T = `(${TARGET_SAMPLES})`;
    const params = [this.datasetId, split];
    const unknown = await tx.query(
      `SELECT file, count(*) OVER () AS n FROM (SELECT DISTINCT file FROM ${Y} y ANTI JOIN ${T} s ON s.stem = y.stem) ORDER BY file LIMIT ${EXAMPLES}`, params,
    );
    if (unknown[0]) {
      throw new DataVisorError('INVALID_RESULTS',
        `${unknown[0].n} prediction file(s) name no image of the dataset${split === null ? '' : `'s split "${split}"`} by their stem (${unknown.map((r) => r.file).join(', ')}); ` +
          'a file x.txt holds the predictions of the image x.jpg (any extension): check that the predictions were made for this dataset');
    }
    const ambiguous = await tx.query(
      `SELECT y.stem, count(*) AS n, string_agg(s.file_name, ', ' ORDER BY s.ord) AS names
       FROM (SELECT DISTINCT stem FROM ${Y}) y JOIN ${T} s ON s.stem = y.stem GROUP BY y.stem HAVING count(*) > 1 ORDER BY y.stem LIMIT ${EXAMPLES}`, params,
    );
    if (ambiguous[0]) {
      const a = ambiguous[0];
      throw new DataVisorError('BAD_USER_INPUT',
        `prediction file ${a.stem}.txt could be the predictions of ${a.n} images (${a.names}): give the split they were made for (split, --split)`);
    }
    const unsized = await tx.query(
      `SELECT DISTINCT s.file_name AS x FROM ${Y} y JOIN ${T} s ON s.stem = y.stem WHERE s.width IS NULL OR s.height IS NULL ORDER BY x LIMIT ${EXAMPLES}`, params,
    );
    if (unsized[0]) {
      throw new DataVisorError('INVALID_RESULTS', `YOLO boxes are relative to the image's size, and image(s) ${unsized.map((r) => r.x).join(', ')} have none`);
    }
    const badClass = await tx.query(
      `SELECT y.file, y.line, y.class, count(*) OVER () AS n FROM ${Y} y
       ANTI JOIN (SELECT category_id FROM categories WHERE dataset_id = $1) c ON c.category_id = y.class ORDER BY y.ord LIMIT ${EXAMPLES}`, [this.datasetId],
    );
    if (badClass[0]) {
      throw new DataVisorError('INVALID_RESULTS',
        `${badClass[0].n} prediction(s) have a class that is not a category id of the dataset (${badClass.map((r) => `class ${r.class} at ${r.file}:${r.line}`).join(', ')}); ` +
          "classes are the dataset's category ids, as the YOLO reader numbers its names (0, 1, …)");
    }
    await tx.run(
      `INSERT INTO ${this.table('p')}
       SELECT 0, y.ord, s.image_id, y.class, (y.cx - y.w / 2) * s.width, (y.cy - y.h / 2) * s.height, y.w * s.width, y.h * s.height,
              y.w * s.width * y.h * s.height, 'none', 0, 0, y.score, NULL
       FROM ${Y} y JOIN ${T} s ON s.stem = y.stem`,
      params,
    );
  }
}

const EXISTING_RUN = `SELECT label_set, kind FROM label_sets WHERE dataset_id = $1 AND name = $2`;

/** A run's name may be used unless it is the ground truth's, or a run's and not to be replaced. */
function refuseName(existing: Row | undefined, datasetId: string, name: string, replace: boolean): void {
  if (!existing) return;
  if (existing.kind !== 'predictions') throw new DataVisorError('BAD_USER_INPUT', `"${name}" names the dataset's ground truth; choose another name for the prediction run`);
  if (!replace) {
    throw new DataVisorError('CONFLICT', `dataset ${datasetId} already has a prediction run named "${name}"; choose another name, or replace it (replace: true, --replace)`);
  }
}

/** INVALID_RESULTS naming the first detections (by position in the file) of checked table `F` that match `where`. */
async function refuseUnknown(tx: Transaction, datasetId: string, F: string, where: string, key: 'image_id' | 'category_id', section: string): Promise<void> {
  const rows = await tx.query(
    `SELECT ord, ${key} AS v, count(*) OVER () AS n, count(DISTINCT ${key}) OVER () AS d FROM ${F} WHERE ${where} ORDER BY ord LIMIT ${EXAMPLES}`,
  );
  if (rows.length === 0) return;
  const first = rows[0]!;
  const examples = rows.map((r) => `${key} ${r.v} at [${r.ord}]`).join(', ');
  throw new DataVisorError(
    'INVALID_RESULTS',
    `${first.n} prediction(s) name ${first.d} ${key} value(s) that are not in the dataset's ${section} (${examples}${Number(first.n) > rows.length ? ', …' : ''}); ` +
      `check that the results were made for this dataset`,
  );
}
