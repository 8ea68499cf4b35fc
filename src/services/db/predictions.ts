import { DataVisorError } from '../errors.js';
import { isDatasetId } from '../ids.js';
import { A, ANN_TEXT, textAt, type Columns } from '../records/columns.js';
import { appendAnnotationValues } from './annotations.js';
import type { ChunkedAppender } from './chunked-appender.js';
import type { ColumnChunk, Database, Row, Transaction } from './connection.js';
import { deleteEvaluations } from './evaluations.js';
import type { YoloPredictionRows } from '../predictions/yolo-results.js';
import { ANNOTATION_STORED_COLUMNS } from './schema.js';

/**
 * Detections that could not be appended in sample order (db/predictions.ts, RunWriter): their
 * sample, their position in the file, and the columns `annotations` stores of them.
 */
const STAGED_COLUMNS = `sample_ord INTEGER NOT NULL, position INTEGER NOT NULL, image_id DOUBLE NOT NULL, category_id DOUBLE NOT NULL,
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

/** Temporary tables of a change's connection (they end with it): detections out of sample order, YOLO lines. */
const STAGED = 'prediction_rows_staged';
const YOLO_LINES = 'prediction_yolo_lines';

const EXAMPLES = 5;
const MAX_ORD = 2_147_483_647;

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

/** A batch's detections resolved to their samples (the dataset's image id, which may differ from the file's). */
export interface ResolvedSamples {
  ords: Int32Array;
  imageIds: Float64Array;
}

/** The annotations columns a run's rows fill, in the table's order (`source` is computed, not stored). */
const RUN_COLUMNS = [...ANNOTATION_STORED_COLUMNS.split(',').map((c) => c.trim()), 'label_set'];

/**
 * Writes one prediction run inside a change of its dataset (all or nothing: the change commits
 * it). Detections come in file order, each with its sample; their `ord`s follow every ord the
 * dataset holds (`ord_base` + position in the file: unique in the dataset, the file order kept),
 * and their annotation ids are position + 1, as pycocotools numbers results.
 *
 * Stored as the ground truth is, sorted by sample, so a page's predictions are a narrow range of
 * the table. Detection files are written image by image in the dataset's order (every exporter
 * walks its dataset), so rows are appended straight into `annotations` while their samples come
 * in order: the run is written once, and nothing is read back. From the first detection out of
 * that order on (a file sorted otherwise, or several processes' outputs concatenated), rows go to
 * a temporary table of the change's connection and are written sorted by sample once the file is
 * read; the run is then two sorted runs of rows, each narrow per page. Temporary tables end with
 * the change's connection, committed or not: nothing is left to drop.
 */
export class RunWriter {
  private staged: ChunkedAppender | null = null;
  private lastSample = -1;
  private written = 0;
  private yoloLines: YoloLines | null = null;

  private constructor(
    private readonly tx: Transaction,
    private readonly datasetId: string,
    private readonly name: string,
    private readonly sourcePath: string,
    readonly labelSet: number,
    private readonly ordBase: number,
    private readonly rows: ChunkedAppender,
    private readonly shapes: ChunkedAppender,
  ) {}

  /**
   * In the dataset's change `tx`: CONFLICT when the run exists, unless `replace` (its rows go
   * first); then the run's label set and first ord, and the appenders.
   */
  static async begin(tx: Transaction, datasetId: string, name: string, options: { replace: boolean; sourcePath: string }): Promise<RunWriter> {
    if (!isDatasetId(datasetId)) throw new DataVisorError('INTERNAL', `bad dataset id ${datasetId}`);
    const [existing] = await tx.query(EXISTING_RUN, [datasetId, name]);
    refuseName(existing, datasetId, name, options.replace);
    if (existing) await deleteLabelSet(tx, datasetId, existing.label_set as number);
    const columns = await tx.query(`SELECT column_name FROM duckdb_columns() WHERE table_name = 'annotations' AND NOT is_generated ORDER BY column_index`).catch(() => null);
    const names = columns?.map((c) => c.column_name as string);
    if (names && names.join() !== RUN_COLUMNS.join()) throw new DataVisorError('INTERNAL', `annotations has columns ${names.join(', ')}; expected ${RUN_COLUMNS.join(', ')}`);
    const [ids] = await tx.query(
      `SELECT coalesce((SELECT max(label_set) FROM label_sets WHERE dataset_id = $1), 0) + 1 AS label_set,
              coalesce((SELECT max(ord) FROM annotations WHERE dataset_id = $1), -1) + 1 AS ord_base`,
      [datasetId],
    );
    const rows = await tx.appender('annotations');
    const shapes = await tx.appender('annotation_shapes');
    const labelSet = ids!.label_set as number;
    rows.constant(0, datasetId);
    rows.constant(11, false);
    rows.constant(15, null);
    rows.constant(17, null);
    rows.constant(18, labelSet);
    shapes.constant(0, datasetId);
    shapes.constant(3, null);
    return new RunWriter(tx, datasetId, name, options.sourcePath, labelSet, ids!.ord_base as number, rows, shapes);
  }

  /** Detections appended so far. */
  get count(): number {
    return this.written;
  }

  /** The next detections of the file (`c`, as parsed), each of the sample `samples` gives it. */
  async append(c: Columns, samples: ResolvedSamples): Promise<void> {
    const first = this.written;
    if (this.ordBase + first + c.count - 1 > MAX_ORD) {
      throw new DataVisorError('BAD_USER_INPUT', `dataset ${this.datasetId} would hold more than 2^31 annotations and predictions; delete prediction runs it no longer needs`);
    }
    this.written += c.count;
    let i = 0;
    if (this.staged === null) {
      const a = this.rows;
      const n = c.nums;
      const seg = c.texts[ANN_TEXT.segmentation]!;
      for (; i < c.count; i++) {
        const sample = samples.ords[i]!;
        if (sample < this.lastSample) break;
        this.lastSample = sample;
        const o = i * c.stride;
        const ord = this.ordBase + first + i;
        a.num(1, sample);
        a.num(2, ord);
        a.int(3, first + i + 1);
        a.int(4, samples.imageIds[i]!);
        a.int(5, n[o + A.categoryId]!);
        appendAnnotationValues(a, n, o);
        a.endRow();
        const text = textAt(seg, i);
        if (text !== null) {
          this.shapes.num(1, ord);
          this.shapes.text(2, text);
          this.shapes.endRow();
        }
      }
      if (i === c.count) return;
      this.staged = await this.openStage();
    }
    this.stage(c, samples, first, i);
  }

  /** Rows `from`… of a batch whose first detection is at `first` in the file, into the scratch table. */
  private stage(c: Columns, samples: ResolvedSamples, first: number, from: number): void {
    const a = this.staged!;
    const n = c.nums;
    const seg = c.texts[ANN_TEXT.segmentation]!;
    for (let i = from; i < c.count; i++) {
      const o = i * c.stride;
      a.num(0, samples.ords[i]!);
      a.num(1, first + i);
      a.num(2, samples.imageIds[i]!);
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

  private async openStage(): Promise<ChunkedAppender> {
    await this.tx.run(`CREATE TEMP TABLE ${STAGED} (${STAGED_COLUMNS})`);
    return this.tx.appender(STAGED);
  }

  /** YOLO prediction lines, staged to be matched to samples by stem in SQL (resolveYolo()). */
  async appendYolo(r: YoloPredictionRows): Promise<void> {
    this.yoloLines ??= await YoloLines.open(this.tx);
    this.yoloLines.append(r);
  }

  /**
   * The staged YOLO lines checked against the dataset (of the split given, if any) and written:
   * each file's stem names one sample, its class is the category id (what the YOLO reader
   * assigns: the class index), and its normalised box becomes pixels of the sample's size.
   */
  async resolveYolo(split: string | null): Promise<void> {
    const lines = this.yoloLines;
    if (!lines) return;
    lines.close();
    await lines.check(this.datasetId, split);
    this.staged ??= await this.openStage();
    this.staged.close();
    await this.tx.run(
      `INSERT INTO ${STAGED}
       SELECT s.ord, y.ord, s.image_id, y.class, (y.cx - y.w / 2) * s.width, (y.cy - y.h / 2) * s.height, y.w * s.width, y.h * s.height,
              y.w * s.width * y.h * s.height, 'none', 0, 0, y.score, NULL
       FROM ${YOLO_LINES} y JOIN (${TARGET_SAMPLES}) s ON s.stem = y.stem`,
      [this.datasetId, split],
    );
    this.written = lines.count;
  }

  /** Writes what waits (the appenders' last rows, the staged rows sorted by sample) and the run's label set; answers the run's size. */
  async finish(): Promise<number> {
    const ds = this.datasetId;
    if (this.ordBase + this.written - 1 > MAX_ORD) {
      throw new DataVisorError('BAD_USER_INPUT', `dataset ${ds} would hold more than 2^31 annotations and predictions; delete prediction runs it no longer needs`);
    }
    this.rows.close();
    this.shapes.close();
    if (this.staged) {
      this.staged.close();
      const S = STAGED;
      await this.tx.run(
        `INSERT INTO annotations (${ANNOTATION_STORED_COLUMNS}, label_set)
         SELECT $1, sample_ord, $2 + position, position + 1, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, false,
                kind, polygon_count, point_count, NULL, score, NULL, $3
         FROM ${S} ORDER BY sample_ord, position`,
        [ds, this.ordBase, this.labelSet],
      );
      await this.tx.run(`INSERT INTO annotation_shapes SELECT $1, $2 + position, segmentation, NULL FROM ${S} WHERE segmentation IS NOT NULL`, [ds, this.ordBase]);
    }
    await this.tx.run(
      // The revision the change commits at: its commit adds one.
      `INSERT INTO label_sets (dataset_id, label_set, name, kind, source_path, annotation_count, created_at, ord_base, revision)
       VALUES ($1, $2, $3, 'predictions', $4, $5, now(), $6, (SELECT revision + 1 FROM datasets WHERE id = $1))`,
      [ds, this.labelSet, this.name, this.sourcePath, this.written, this.ordBase],
    );
    return this.written;
  }
}

/** Staged YOLO lines and their checks: every file names one sample with a size, every class is a category. */
class YoloLines {
  count = 0;

  private constructor(
    private readonly tx: Transaction,
    private readonly rows: ChunkedAppender,
  ) {}

  static async open(tx: Transaction): Promise<YoloLines> {
    await tx.run(`CREATE TEMP TABLE ${YOLO_LINES} (${YOLO_STAGED_COLUMNS})`);
    return new YoloLines(tx, await tx.appender(YOLO_LINES));
  }

  /** Lines numbered in the order given (files in name order, lines in file order). */
  append(r: YoloPredictionRows): void {
    const a = this.rows;
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

  close(): void {
    this.rows.close();
  }

  async check(datasetId: string, split: string | null): Promise<void> {
    const Y = YOLO_LINES;
    const T = `(${TARGET_SAMPLES})`;
    const params = [datasetId, split];
    const unknown = await this.tx.query(
      `SELECT file, count(*) OVER () AS n FROM (SELECT DISTINCT file FROM ${Y} y ANTI JOIN ${T} s ON s.stem = y.stem) ORDER BY file LIMIT ${EXAMPLES}`, params,
    );
    if (unknown[0]) {
      throw new DataVisorError('INVALID_RESULTS',
        `${unknown[0].n} prediction file(s) name no image of the dataset${split === null ? '' : `'s split "${split}"`} by their stem (${unknown.map((r) => r.file).join(', ')}); ` +
          'a file x.txt holds the predictions of the image x.jpg (any extension): check that the predictions were made for this dataset');
    }
    const ambiguous = await this.tx.query(
      `SELECT y.stem, count(*) AS n, string_agg(s.file_name, ', ' ORDER BY s.ord) AS names
       FROM (SELECT DISTINCT stem FROM ${Y}) y JOIN ${T} s ON s.stem = y.stem GROUP BY y.stem HAVING count(*) > 1 ORDER BY y.stem LIMIT ${EXAMPLES}`, params,
    );
    if (ambiguous[0]) {
      const a = ambiguous[0];
      throw new DataVisorError('BAD_USER_INPUT',
        `prediction file ${a.stem}.txt could be the predictions of ${a.n} images (${a.names}): give the split they were made for (split, --split)`);
    }
    const unsized = await this.tx.query(
      `SELECT DISTINCT s.file_name AS x FROM ${Y} y JOIN ${T} s ON s.stem = y.stem WHERE s.width IS NULL OR s.height IS NULL ORDER BY x LIMIT ${EXAMPLES}`, params,
    );
    if (unsized[0]) {
      throw new DataVisorError('INVALID_RESULTS', `YOLO boxes are relative to the image's size, and image(s) ${unsized.map((r) => r.x).join(', ')} have none`);
    }
    const badClass = await this.tx.query(
      `SELECT y.file, y.line, y.class, count(*) OVER () AS n FROM ${Y} y
       ANTI JOIN (SELECT category_id FROM categories WHERE dataset_id = $1) c ON c.category_id = y.class ORDER BY y.ord LIMIT ${EXAMPLES}`, [datasetId],
    );
    if (badClass[0]) {
      throw new DataVisorError('INVALID_RESULTS',
        `${badClass[0].n} prediction(s) have a class that is not a category id of the dataset (${badClass.map((r) => `class ${r.class} at ${r.file}:${r.line}`).join(', ')}); ` +
          "classes are the dataset's category ids, as the YOLO reader numbers its names (0, 1, …)");
    }
  }
}

/**
 * The samples a results file may name, sorted by the image id the file uses for them (`key`):
 * `file_image_id` with a split (the ids the split's own file gave), else the dataset's image id.
 * Columns: 0 the key, 1 the sample's ord, 2 its image id in the dataset (all DOUBLE).
 */
export function streamTargetSamples(db: Database, datasetId: string, split: string | null): AsyncGenerator<ColumnChunk> {
  const key = split === null ? 'image_id' : 'file_image_id';
  return db.stream(`SELECT ${key}::DOUBLE, ord::DOUBLE, image_id::DOUBLE FROM (${TARGET_SAMPLES}) ORDER BY 1`, [datasetId, split]);
}

/** How many samples streamTargetSamples gives. */
export async function countTargetSamples(db: Database, datasetId: string, split: string | null): Promise<number> {
  const [r] = await db.query(`SELECT count(*) AS n FROM samples WHERE dataset_id = $1 AND ($2::VARCHAR IS NULL OR split = $2)`, [datasetId, split]);
  return Number(r!.n);
}

/** The dataset's category ids. */
export async function categoryIds(db: Database, datasetId: string): Promise<number[]> {
  return (await db.query(`SELECT category_id FROM categories WHERE dataset_id = $1`, [datasetId])).map((r) => Number(r.category_id));
}

/** The dataset's splits, for the error that names them. */
export async function splitsOf(db: Database, datasetId: string): Promise<string[]> {
  return (await db.query(`SELECT DISTINCT split FROM samples WHERE dataset_id = $1 AND split IS NOT NULL ORDER BY split`, [datasetId])).map((r) => r.split as string);
}

const EXISTING_RUN = `SELECT label_set, kind FROM label_sets WHERE dataset_id = $1 AND name = $2`;

/** CONFLICT (or BAD_USER_INPUT for the ground truth's name) before anything is read; begin() checks again in the change. */
export async function refuseUsedName(db: Database, datasetId: string, name: string, replace: boolean): Promise<void> {
  refuseName((await db.query(EXISTING_RUN, [datasetId, name]))[0], datasetId, name, replace);
}

/** A run's name may be used unless it is the ground truth's, or a run's and not to be replaced. */
function refuseName(existing: Row | undefined, datasetId: string, name: string, replace: boolean): void {
  if (!existing) return;
  if (existing.kind !== 'predictions') throw new DataVisorError('BAD_USER_INPUT', `"${name}" names the dataset's ground truth; choose another name for the prediction run`);
  if (!replace) {
    throw new DataVisorError('CONFLICT', `dataset ${datasetId} already has a prediction run named "${name}"; choose another name, or replace it (replace: true, --replace)`);
  }
}
