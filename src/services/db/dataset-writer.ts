import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { A, ANN_TEXT, I, IMG_TEXT, textAt, type Columns } from '../records/columns.js';
import { ANNOTATION_QUIRKS, IMAGE_QUIRKS } from '../records/quirks.js';
import type { CategoryRecord, LicenseRecord, Warning } from '../records/types.js';
import type { Logger } from '../logger.js';
import { DataVisorError } from '../errors.js';
import { isDatasetId } from '../ids.js';
import { appendAnnotationValues } from './annotations.js';
import { ChunkedAppender } from './chunked-appender.js';
import type { IngestPhase } from './ingest-resources.js';
import { plainRow, type Database, type Row } from './connection.js';
import { ANNOTATION_STORED_COLUMNS } from './schema.js';
import { mergeInto, type MergeOutcome, type MergePlacement } from './dataset-merge.js';

export type { MergeOutcome, MergePlacement };

/** Boxes may overshoot the image by rounding; COCO's own tools allow about a pixel. */
const EDGE_TOLERANCE = 1;
const EXAMPLES = 5;
/** Columns of a row appended straight into `annotations`: ANNOTATION_STORED_COLUMNS and label_set. */
const DIRECT_COLUMNS = 19;
/** Category renumberings up to this many pairs are a CASE (order-keeping), larger ones a join. */
const MAX_CASE_RENUMBERING = 256;

/**
 * Staged rows are as narrow as the final checks allow: ids as DOUBLE (the parser hands every
 * number over as one; ids are checked to be safe integers) and the segmentation kind as its code,
 * which is the final table's ENUM. The final INSERT widens them after its sort, which then moves
 * fewer bytes.
 */
const STAGED_SAMPLE_COLUMNS = `ord INTEGER NOT NULL, image_id DOUBLE NOT NULL, file_name VARCHAR NOT NULL, width INTEGER, height INTEGER,
  license_id DOUBLE, coco_url VARCHAR, flickr_url VARCHAR, date_captured VARCHAR, metadata VARCHAR, split VARCHAR, quirks UTINYINT NOT NULL`;
const STAGED_ANNOTATION_COLUMNS = `ord INTEGER NOT NULL, annotation_id DOUBLE NOT NULL, image_id DOUBLE NOT NULL, category_id DOUBLE NOT NULL,
  bbox_x DOUBLE, bbox_y DOUBLE, bbox_w DOUBLE, bbox_h DOUBLE, area DOUBLE, is_crowd BOOLEAN NOT NULL, kind segmentation_kind NOT NULL,
  polygon_count INTEGER NOT NULL, point_count INTEGER NOT NULL, num_keypoints INTEGER, score DOUBLE, extra VARCHAR, quirks UTINYINT NOT NULL`;

export type { Warning };

export interface DatasetRecord {
  id: string;
  name: string;
  format: string;
  sourcePath: string;
  imageDir: string;
  split: string | null;
  info: Record<string, unknown> | null;
  pluginStats: Record<string, unknown> | null;
  bytes: number;
  ingestSeconds: number;
}

export interface FinalCounts {
  imageCount: number;
  annotationCount: number;
  categoryCount: number;
  warnings: Warning[];
}

/**
 * Writes one dataset inside one transaction on a connection of its own. Rows go through DuckDB
 * appenders into per-ingest staging tables (file order, references unresolved), or, while a
 * reader's `rowsInOrder` promise holds, annotations straight into `annotations`; `finish` checks
 * references in SQL, writes the final tables sorted for reading, and computes the warnings.
 * Nothing is visible to readers before `commit`; `rollback` (or a killed process) leaves nothing.
 */
export class DatasetWriter {
  private samples: ChunkedAppender | null = null;
  private annotations: ChunkedAppender | null = null;
  /**
   * With `rowsInOrder` (begin()): the final `annotations` table, which the first part's rows go
   * straight into while they keep that promise, saving the copy from the staging table in
   * `finish` (on train2017-scale YOLO 0.5 s of 860,001 rows). The first row that breaks it, and
   * every row after, is staged; `finish` then moves the direct rows to the staging table too.
   */
  private direct: ChunkedAppender | null = null;
  private directRows = 0;
  private directBroken = false;
  private shapes: ChunkedAppender | null = null;
  /** Annotations (and shapes) of the later parts of a file parsed in parts, numbered within their part. */
  private partAnnotations: ChunkedAppender | null = null;
  private partShapes: ChunkedAppender | null = null;
  private partCounts: number[] = [];
  private files: ChunkedAppender | null = null;
  private readonly categories: CategoryRecord[] = [];
  private readonly licenses: LicenseRecord[] = [];
  /** Provisional category id → final one, applied to the staged annotations in `finish`. */
  private readonly renumbering = new Map<number, number>();
  private imageCount = 0;
  private annotationCount = 0;
  /**
   * What the rows showed as they were appended, so that `finish` can skip work (docs/ingestion.md):
   * every image id equals its sample's ord (readers that number images 0..n-1, as YOLO and VOC do);
   * the first part's annotations came in non-decreasing image id order, and with increasing ids.
   */
  private imageIdsAreOrds = true;
  private annotationsByImage = true;
  private annotationIdsIncrease = true;
  private lastImageId = -Infinity;
  private lastAnnotationId = -Infinity;
  /** Whether every annotation (of any part) named an image id that is a whole number in [0, images appended). */
  private annotationImagesInRange = true;
  /**
   * Per category id of the first part: its annotations, the images among them (exact while
   * `annotationsByImage` holds: an image's annotations are then together) and the last image seen.
   */
  private readonly categoryCounts = new Map<number, { annotations: number; images: number; lastImage: number }>();
  private listedFiles = false;
  private done = false;
  /** For DuckDB's memory limit and threads (ingest-resources.ts); null once committed or rolled back. */
  private phase: IngestPhase | null = null;

  private constructor(
    private readonly db: Database,
    private readonly conn: DuckDBConnection,
    readonly datasetId: string,
    private readonly split: string | null,
    private readonly log: Logger,
  ) {}

  /**
   * `rowsInOrder`: the reader promises image ids 0..n-1 in order, each image's annotations after
   * it and before the next image's, with safe integer ids and final category ids (YOLO). Checked
   * row by row; a broken promise costs a move in `finish`, never a wrong row.
   */
  static async begin(db: Database, datasetId: string, split: string | null, log: Logger, options: { rowsInOrder?: boolean } = {}): Promise<DatasetWriter> {
    if (!isDatasetId(datasetId)) throw new DataVisorError('INTERNAL', `bad dataset id ${datasetId}`);
    const conn = await db.connect();
    const w = new DatasetWriter(db, conn, datasetId, split, log.child({ dataset_id: datasetId }));
    try {
      await w.enter('appending');
      await conn.run('BEGIN TRANSACTION');
      await conn.run(`CREATE TABLE ${w.t('s')} (${STAGED_SAMPLE_COLUMNS})`);
      // Annotations wait in file order until their samples' ords are known.
      await conn.run(`CREATE TABLE ${w.t('a')} (${STAGED_ANNOTATION_COLUMNS})`);
      // A later part's rows wait here until the parts before it are counted (docs/ingestion.md).
      await conn.run(`CREATE TABLE ${w.t('p')} (part INTEGER NOT NULL, ${STAGED_ANNOTATION_COLUMNS})`);
      await conn.run(`CREATE TABLE ${w.t('h')} (part INTEGER NOT NULL, ord INTEGER NOT NULL, segmentation VARCHAR, keypoints VARCHAR)`);
      await conn.run(`CREATE TABLE ${w.t('f')} (path VARCHAR NOT NULL, readable BOOLEAN NOT NULL)`);
      const appender = async (table: string) => new ChunkedAppender(await conn.createAppender(table));
      w.samples = await appender(w.t('s'));
      w.annotations = await appender(w.t('a'));
      w.shapes = await appender('annotation_shapes');
      w.partAnnotations = await appender(w.t('p'));
      w.partShapes = await appender(w.t('h'));
      if (options.rowsInOrder) {
        w.direct = await appender('annotations');
        w.direct.constant(0, datasetId);
        // The stored columns and label_set (`source` is generated, not appended): directAppend's layout.
        if (w.direct.columnCount !== DIRECT_COLUMNS) throw new DataVisorError('INTERNAL', `the annotations table has ${w.direct.columnCount} columns to append, not ${DIRECT_COLUMNS}`);
      }
    } catch (e) {
      await w.rollback();
      throw e;
    }
    return w;
  }

  /**
   * Staging table names are per ingest, so concurrent ingests never touch each other's rows. The
   * id is one we made (checked by isDatasetId in begin()), never user text.
   */
  private t(kind: 's' | 'a' | 'p' | 'h' | 'f' | 'v' | 'r' | 'd'): string {
    return `staging_${kind}_${this.datasetId}`;
  }

  get counts() {
    return { images: this.imageCount, annotations: this.annotationCount + this.partCounts.reduce((n, c) => n + c, 0) };
  }

  /**
   * Appends a batch of images. `metadata[i]`, when given, replaces row i's extra keys (plugins
   * add to them); otherwise the file's extra keys are stored as they are.
   */
  appendSamples(c: Columns, metadata?: (string | null)[]): void {
    const a = this.samples!;
    const n = c.nums;
    const t = c.texts;
    for (let i = 0; i < c.count; i++) {
      const o = i * c.stride;
      if (n[o + I.id] !== this.imageCount) this.imageIdsAreOrds = false;
      a.num(0, this.imageCount++);
      a.num(1, n[o + I.id]!);
      a.text(2, textAt(t[IMG_TEXT.fileName]!, i));
      a.num(3, n[o + I.width]!);
      a.num(4, n[o + I.height]!);
      a.num(5, n[o + I.license]!);
      a.text(6, textAt(t[IMG_TEXT.cocoUrl]!, i));
      a.text(7, textAt(t[IMG_TEXT.flickrUrl]!, i));
      a.text(8, textAt(t[IMG_TEXT.dateCaptured]!, i));
      a.text(9, metadata ? (metadata[i] ?? null) : textAt(t[IMG_TEXT.extra]!, i));
      a.text(10, textAt(t[IMG_TEXT.split]!, i));
      a.num(11, n[o + I.quirks]!);
      a.endRow();
    }
  }

  /**
   * Appends a batch of annotations read by `part` of the file (0: the first, or the only one);
   * a later part's are numbered within it until `finish` knows the counts of the parts before.
   */
  appendAnnotations(c: Columns, part = 0): void {
    const a = part === 0 ? this.annotations! : this.partAnnotations!;
    const sh = part === 0 ? this.shapes! : this.partShapes!;
    const n = c.nums;
    const t = c.texts;
    // A later part's rows lead with their part, then the same columns.
    const at = part === 0 ? 0 : 1;
    for (let i = 0; i < c.count; i++) {
      const o = i * c.stride;
      const image = n[o + A.imageId]!;
      if (!(Number.isInteger(image) && image >= 0 && image < this.imageCount)) this.annotationImagesInRange = false;
      const ord = part === 0 ? this.annotationCount++ : (this.partCounts[part] = (this.partCounts[part] ?? 0) + 1) - 1;
      if (part === 0) {
        const id = n[o + A.id]!;
        if (!(image >= this.lastImageId)) this.annotationsByImage = false;
        if (!(id > this.lastAnnotationId)) this.annotationIdsIncrease = false;
        this.lastImageId = image;
        this.lastAnnotationId = id;
        if (this.annotationsByImage) this.countCategory(n[o + A.categoryId]!, image);
        if (this.direct !== null && !this.directBroken) {
          if (this.annotationsByImage && this.imageIdsAreOrds && this.annotationImagesInRange && n[o + A.quirks] === 0 &&
            Number.isSafeInteger(id) && Number.isSafeInteger(n[o + A.categoryId])) {
            this.directAppend(c, i, ord);
            continue;
          }
          this.directBroken = true;
        }
      }
      if (part !== 0) a.num(0, part);
      a.num(at, ord);
      a.num(at + 1, n[o + A.id]!);
      a.num(at + 2, n[o + A.imageId]!);
      a.num(at + 3, n[o + A.categoryId]!);
      a.num(at + 4, n[o + A.x]!);
      a.num(at + 5, n[o + A.y]!);
      a.num(at + 6, n[o + A.w]!);
      a.num(at + 7, n[o + A.h]!);
      a.num(at + 8, n[o + A.area]!);
      a.bool(at + 9, n[o + A.isCrowd] === 1);
      a.num(at + 10, n[o + A.kind]!);
      a.num(at + 11, n[o + A.polygonCount]!);
      a.num(at + 12, n[o + A.pointCount]!);
      a.num(at + 13, n[o + A.numKeypoints]!);
      a.num(at + 14, n[o + A.score]!);
      a.text(at + 15, textAt(t[ANN_TEXT.extra]!, i));
      a.num(at + 16, n[o + A.quirks]!);
      a.endRow();
      const seg = textAt(t[ANN_TEXT.segmentation]!, i);
      const keypoints = textAt(t[ANN_TEXT.keypoints]!, i);
      if (seg != null || keypoints != null) {
        if (part === 0) sh.text(0, this.datasetId);
        else sh.num(0, part);
        sh.num(1, ord);
        sh.text(2, seg);
        sh.text(3, keypoints);
        sh.endRow();
      }
    }
  }

  /** Row `i` of `c` into the final table (layout: ANNOTATION_STORED_COLUMNS, then label_set), with its shape if any. */
  private directAppend(c: Columns, i: number, ord: number): void {
    const a = this.direct!;
    const n = c.nums;
    const o = i * c.stride;
    // Column 0, the dataset id, is constant (begin()).
    a.num(1, n[o + A.imageId]!);
    a.num(2, ord);
    a.int(3, n[o + A.id]!);
    a.int(4, n[o + A.imageId]!);
    a.int(5, n[o + A.categoryId]!);
    appendAnnotationValues(a, n, o);
    a.bool(11, n[o + A.isCrowd] === 1);
    a.num(15, n[o + A.numKeypoints]!);
    a.text(17, textAt(c.texts[ANN_TEXT.extra]!, i));
    a.num(18, 0);
    a.endRow();
    this.directRows++;
    const seg = textAt(c.texts[ANN_TEXT.segmentation]!, i);
    const keypoints = textAt(c.texts[ANN_TEXT.keypoints]!, i);
    if (seg != null || keypoints != null) {
      const sh = this.shapes!;
      sh.text(0, this.datasetId);
      sh.num(1, ord);
      sh.text(2, seg);
      sh.text(3, keypoints);
      sh.endRow();
    }
  }

  private countCategory(categoryId: number, imageId: number): void {
    const c = this.categoryCounts.get(categoryId);
    if (!c) this.categoryCounts.set(categoryId, { annotations: 1, images: 1, lastImage: imageId });
    else {
      c.annotations++;
      if (c.lastImage !== imageId) {
        c.images++;
        c.lastImage = imageId;
      }
    }
  }

  /**
   * The categories' counts by final id, as counted while appending; null when they cannot be
   * trusted (annotations out of image order, later parts, or two ids renumbered into one, whose
   * images could then be counted twice): SQL counts them instead.
   */
  private countsByCategory(oneSequence: boolean): Map<number, { annotations: number; images: number }> | null {
    if (!oneSequence || !this.annotationsByImage) return null;
    const out = new Map<number, { annotations: number; images: number }>();
    for (const [id, c] of this.categoryCounts) {
      const final = this.renumbering.get(id) ?? id;
      if (out.has(final)) return null;
      out.set(final, { annotations: c.annotations, images: c.images });
    }
    return out;
  }

  /** The parse's split did not hold: the later parts' rows go, and the first part reads them again. */
  async dropParts(): Promise<void> {
    this.partAnnotations!.flush();
    this.partShapes!.flush();
    await this.exec(`DELETE FROM ${this.t('p')}`);
    await this.exec(`DELETE FROM ${this.t('h')}`);
    this.partCounts = [];
  }

  addCategories(categories: CategoryRecord[]): void {
    this.categories.push(...categories);
  }

  /** Annotations with category id `from[i]` (staged or still to come) get `to[i]` (see RecordEvent). */
  renumberCategories(from: readonly number[], to: readonly number[]): void {
    if (from.length !== to.length || ![...from, ...to].every(Number.isSafeInteger)) {
      throw new DataVisorError('INTERNAL', 'a category renumbering must pair safe integer ids');
    }
    from.forEach((f, i) => {
      if (f !== to[i]) this.renumbering.set(f, to[i]!);
    });
  }

  addLicenses(licenses: LicenseRecord[]): void {
    this.licenses.push(...licenses);
  }

  /**
   * The files under the image folder (relative paths, with `/`), for the missing-file check; one
   * not `readable` (a link out of the data roots) is there, but its image will be refused.
   */
  async appendFileNames(files: AsyncIterable<{ name: string; readable: boolean }>): Promise<void> {
    const a = (this.files ??= new ChunkedAppender(await this.conn.createAppender(this.t('f'))));
    for await (const f of files) {
      a.text(0, f.name);
      a.bool(1, f.readable);
      a.endRow();
    }
    this.listedFiles = true;
  }

  /**
   * Resolves references (an annotation of an unknown image or category is fatal), writes the
   * final rows and computes warnings. Still inside the transaction.
   */
  async finish(readerWarnings: readonly Warning[]): Promise<FinalCounts> {
    for (const a of this.appenders()) a.close();
    await this.enter('finishing');
    this.samples = this.annotations = this.shapes = this.partAnnotations = this.partShapes = this.files = this.direct = null;
    const ds = this.datasetId;
    const S = this.t('s');
    // Decided before allAnnotations() folds the later parts' counts in.
    const oneSequence = this.partCounts.length === 0;
    const direct = await this.directOrMoved(oneSequence);
    const { view: AN, ordered } = direct ? { view: await this.directView(), ordered: true } : await this.renumbered(await this.allAnnotations());
    const F = this.t('f');

    // With image ids that are the samples' ords, ids are unique and an id in range names an image.
    const dupImages = this.imageIdsAreOrds ? [] : await this.rows(
      `SELECT image_id, count(*) AS n, min(ord) AS first, max(ord) AS last FROM ${S} GROUP BY image_id HAVING count(*) > 1 ORDER BY first LIMIT 1`,
    );
    if (dupImages[0]) {
      const d = dupImages[0];
      throw new DataVisorError('INVALID_COCO', `Invalid COCO: image id ${d.image_id} appears ${d.n} times (images[${d.first}] and images[${d.last}]); annotations could not tell them apart`);
    }
    const orphans = this.imageIdsAreOrds && this.annotationImagesInRange ? [] : await this.rows(
      `SELECT a.ord, a.annotation_id, a.image_id, count(*) OVER () AS n FROM ${AN} a ANTI JOIN ${S} s ON a.image_id = s.image_id ORDER BY a.ord LIMIT 1`,
    );
    if (orphans[0]) {
      const o = orphans[0];
      throw new DataVisorError('INVALID_COCO', `Invalid COCO (in annotations[${o.ord}]): annotation ${o.annotation_id} refers to image_id ${o.image_id}, which is not in "images" (${o.n} annotation(s) refer to unknown images)`);
    }

    const seen = new Map<number, number>();
    this.categories.forEach((c, i) => {
      if (seen.has(c.id)) {
        throw new DataVisorError('INVALID_COCO', `Invalid COCO: category id ${c.id} appears twice (categories[${seen.get(c.id)}] and categories[${i}])`);
      }
      seen.set(c.id, i);
    });
    // Counted while appending when that was exact (YOLO, VOC, COCO written image by image): the
    // GROUP BY with count(DISTINCT image_id) below took 0.3-0.6 s on train2017's 860K annotations.
    const counted = this.countsByCategory(oneSequence);
    const cats = await this.conn.createAppender('categories');
    for (const c of this.categories) {
      cats.appendVarchar(ds);
      cats.appendDouble(c.id);
      cats.appendVarchar(c.name);
      appendText(cats, c.supercategory);
      appendText(cats, c.extra ? JSON.stringify(c.extra) : null);
      cats.appendDouble(counted?.get(c.id)?.annotations ?? 0);
      cats.appendDouble(counted?.get(c.id)?.images ?? 0);
      cats.endRow();
    }
    cats.flushSync();
    cats.closeSync();
    const badCats = await this.rows(
      `SELECT a.ord, a.annotation_id, a.category_id, count(*) OVER () AS n FROM ${AN} a
       ANTI JOIN (SELECT category_id FROM categories WHERE dataset_id = $1) c ON a.category_id = c.category_id ORDER BY a.ord LIMIT 1`,
      [ds],
    );
    if (badCats[0]) {
      const o = badCats[0];
      throw new DataVisorError('INVALID_COCO', `Invalid COCO (in annotations[${o.ord}]): annotation ${o.annotation_id} has category_id ${o.category_id}, which is not in "categories" (${o.n} annotation(s) have unknown categories)`);
    }

    if (!counted) {
      await this.exec(
        `UPDATE categories SET annotation_count = c.n, image_count = c.images
         FROM (SELECT category_id, count(*) AS n, count(DISTINCT image_id) AS images FROM ${AN} GROUP BY category_id) c
         WHERE categories.dataset_id = $1 AND categories.category_id = c.category_id`,
        [ds],
      );
    }
    const lic = await this.conn.createAppender('licenses');
    for (const l of this.licenses) {
      if (l.id === null) continue;
      lic.appendVarchar(ds);
      lic.appendDouble(l.id);
      appendText(lic, l.name);
      appendText(lic, l.url);
      lic.endRow();
    }
    lic.flushSync();
    lic.closeSync();

    await this.exec(
      `INSERT INTO samples
       SELECT $1, s.ord, s.image_id, s.file_name, s.width, s.height, coalesce(s.split, $2), s.license_id, s.coco_url, s.flickr_url,
              s.date_captured, s.metadata, coalesce(c.n, 0),
              ${this.listedFiles ? 'f.path IS NULL OR ' : ''}s.quirks & ${IMAGE_QUIRKS.fileNameOutsideFolder} <> 0
       FROM ${S} s
       LEFT JOIN (SELECT image_id, count(*) AS n FROM ${AN} GROUP BY image_id) c ON c.image_id = s.image_id
       ${this.listedFiles ? `LEFT JOIN (SELECT DISTINCT path FROM ${F} WHERE readable) f ON f.path = s.file_name` : ''}
       ORDER BY s.ord`,
      [ds, this.split],
    );
    // Sorted by sample once, here: pages then read a narrow range (docs/storage.md).
    // Widened after the sort (the subquery's order is kept by the projection over it). Sorted by
    // sample alone: readers order a sample's annotations themselves, and one key sorts ~20% faster.
    // When each image id is its sample's ord and the annotations came in image order (YOLO, VOC
    // and COCO files written image by image), the staged table is that order already: a plain
    // scan (insertion order is kept) replaces the join and the sort, which were most of this step.
    // Only for the staged table or a projection of it: a join does not promise to keep the order.
    const inSampleOrder = oneSequence && ordered && this.imageIdsAreOrds && this.annotationsByImage;
    const columns = `annotation_id, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, is_crowd,
              kind, polygon_count, point_count, num_keypoints, score, extra`;
    if (!direct) await this.exec(
      inSampleOrder
        ? `INSERT INTO annotations (${ANNOTATION_STORED_COLUMNS}) SELECT $1, image_id::INTEGER, ord, ${columns} FROM ${AN}`
        : `INSERT INTO annotations (${ANNOTATION_STORED_COLUMNS})
       SELECT $1, sample_ord, ord, ${columns}
       FROM (SELECT s.ord AS sample_ord, a.* FROM ${AN} a JOIN ${S} s ON a.image_id = s.image_id ORDER BY s.ord)`,
      [ds],
    );
    const warnings = [...(await this.warnings(AN, oneSequence && this.annotationIdsIncrease)), ...readerWarnings];
    await this.exec(`DROP VIEW IF EXISTS ${this.t('r')}`);
    await this.exec(`DROP VIEW IF EXISTS ${this.t('v')}`);
    await this.exec(`DROP VIEW IF EXISTS ${this.t('d')}`);
    for (const k of ['s', 'a', 'p', 'h', 'f'] as const) await this.exec(`DROP TABLE ${this.t(k)}`);
    return {
      imageCount: this.imageCount,
      annotationCount: this.annotationCount,
      categoryCount: this.categories.length,
      warnings,
    };
  }

  /**
   * Whether every annotation went straight into the final table and may stay there. When the
   * promise broke (a row out of order, later parts, a renumbering of categories), the direct rows
   * move to the staging table, where the usual path sorts and renumbers them with the rest; the
   * staged table is then out of order, so nothing may copy it as it is.
   */
  private async directOrMoved(oneSequence: boolean): Promise<boolean> {
    if (this.directRows === 0) return false;
    if (!this.directBroken && oneSequence && this.imageIdsAreOrds && this.renumbering.size === 0) return true;
    await this.exec(
      `INSERT INTO ${this.t('a')} SELECT ord, annotation_id, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, is_crowd,
         segmentation_kind, polygon_count, point_count, num_keypoints, score, extra, 0 FROM annotations WHERE dataset_id = $1`,
      [this.datasetId],
    );
    await this.exec(`DELETE FROM annotations WHERE dataset_id = $1`, [this.datasetId]);
    this.directRows = 0;
    this.annotationsByImage = false;
    return false;
  }

  /** The directly written annotations, as the staged ones look (`AN` of finish and warnings); the dataset id is one we made. */
  private async directView(): Promise<string> {
    await this.exec(
      `CREATE VIEW ${this.t('d')} AS SELECT ord, annotation_id, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h, area, is_crowd,
         segmentation_kind AS kind, polygon_count, point_count, num_keypoints, score, extra, 0::UTINYINT AS quirks
       FROM annotations WHERE dataset_id = '${this.datasetId}'`,
    );
    return this.t('d');
  }

  /**
   * The staged annotations (`AN`) as a view with the final category ids (ids no pair names stay as
   * they are, for the unknown-category check). A view, not an UPDATE of the staged rows: that
   * UPDATE took 0.25-0.6 s on 48K staged annotations. A few pairs (VOC's classes) map in a CASE,
   * a projection that keeps the staged rows' order (so the final INSERT may copy them as they
   * are); many in a LEFT JOIN on the pairs, a few ms per read. The pairs are numbers checked in
   * renumberCategories, never user text.
   */
  private async renumbered(AN: string): Promise<{ view: string; ordered: boolean }> {
    if (this.renumbering.size === 0) return { view: AN, ordered: true };
    const pairs = [...this.renumbering];
    const ordered = pairs.length <= MAX_CASE_RENUMBERING;
    await this.exec(
      ordered
        ? `CREATE VIEW ${this.t('r')} AS SELECT * REPLACE (CASE category_id ${pairs.map(([f, t]) => `WHEN ${f} THEN ${t}`).join(' ')} ELSE category_id END AS category_id)
           FROM ${AN}`
        : `CREATE VIEW ${this.t('r')} AS SELECT x.* REPLACE (coalesce(m.new_id, x.category_id) AS category_id)
           FROM ${AN} x LEFT JOIN (VALUES ${pairs.map(([f, t]) => `(${f}::DOUBLE, ${t}::DOUBLE)`).join(', ')}) m(old_id, new_id) ON x.category_id = m.old_id`,
    );
    return { view: this.t('r'), ordered };
  }

  /**
   * The staged annotations of every part in file order: a later part's numbers follow the counts
   * of the parts before it. A view, not a copy: the steps after read it a few times anyway.
   */
  private async allAnnotations(): Promise<string> {
    const offsets: string[] = [];
    let base = this.annotationCount;
    this.partCounts.forEach((count, part) => {
      offsets.push(`WHEN ${part} THEN ${base}`);
      base += count;
    });
    this.annotationCount = base;
    this.partCounts = [];
    if (offsets.length === 0) return this.t('a');
    const ord = `ord + CASE part ${offsets.join(' ')} END`;
    await this.exec(`INSERT INTO annotation_shapes SELECT $1, ${ord}, segmentation, keypoints FROM ${this.t('h')}`, [this.datasetId]);
    await this.exec(
      `CREATE VIEW ${this.t('v')} AS SELECT * FROM ${this.t('a')} UNION ALL SELECT * EXCLUDE (part) REPLACE (${ord} AS ord) FROM ${this.t('p')}`,
    );
    return this.t('v');
  }

  /** `AN`: the staged annotations of every part; `idsUnique`: known from the appends, so not counted again. */
  private async warnings(AN: string, idsUnique: boolean): Promise<Warning[]> {
    const ds = this.datasetId;
    const S = this.t('s');
    const out: Warning[] = [];
    const add = async (code: string, count: number, message: string, examplesSql: string | null, params: (string | number)[] = []) => {
      if (count <= 0) return;
      const examples = examplesSql ? (await this.rows(`${examplesSql} LIMIT ${EXAMPLES}`, params)).map((r) => r.x as string | number) : [];
      out.push({ code, count, message, examples });
    };
    const t = EDGE_TOLERANCE;
    // A box of NaN / Infinity is stored as none, but the file did give one: non_finite_bbox.
    const noBox = `a.bbox_x IS NULL AND a.quirks & ${ANNOTATION_QUIRKS.bboxNotFinite} = 0`;
    const [q] = await this.rows(
      `SELECT
         count(*) FILTER (WHERE a.bbox_w <= 0 OR a.bbox_h <= 0) AS degenerate,
         count(*) FILTER (WHERE a.bbox_x < -${t} OR a.bbox_y < -${t} OR a.bbox_x + a.bbox_w > s.width + ${t} OR a.bbox_y + a.bbox_h > s.height + ${t}) AS outside,
         count(*) FILTER (WHERE a.area > a.bbox_w * a.bbox_h * 1.001 + 1 OR a.area < 0) AS bad_area,
         count(*) FILTER (WHERE ${noBox}) AS no_bbox,
         count(*) FILTER (WHERE a.quirks & ${ANNOTATION_QUIRKS.keptInExtra} <> 0) AS kept_in_extra,
         count(*) FILTER (WHERE a.quirks & ${ANNOTATION_QUIRKS.bboxNotFinite} <> 0) AS box_not_finite,
         count(*) FILTER (WHERE a.quirks & ${ANNOTATION_QUIRKS.areaNotFinite} <> 0) AS area_not_finite
       FROM ${AN} a JOIN ${S} s ON a.image_id = s.image_id`,
    );
    const [dup] = idsUnique ? [] : await this.rows(`SELECT count(*) AS n, sum(c) AS rows FROM (SELECT count(*) AS c FROM ${AN} GROUP BY annotation_id HAVING count(*) > 1)`);
    await add('duplicate_annotation_ids', num(dup?.rows), `${num(dup?.rows)} annotations share ${num(dup?.n)} ids; each is kept and told apart by its position in the file`,
      `SELECT annotation_id AS x FROM ${AN} GROUP BY annotation_id HAVING count(*) > 1 ORDER BY min(ord)`);
    await add('bbox_outside_image', num(q?.outside), `boxes reach more than ${t}px outside their image`,
      `SELECT a.annotation_id AS x FROM ${AN} a JOIN ${S} s ON a.image_id = s.image_id WHERE a.bbox_x < -${t} OR a.bbox_y < -${t} OR a.bbox_x + a.bbox_w > s.width + ${t} OR a.bbox_y + a.bbox_h > s.height + ${t} ORDER BY a.ord`);
    await add('degenerate_bbox', num(q?.degenerate), 'boxes have zero or negative width or height',
      `SELECT annotation_id AS x FROM ${AN} WHERE bbox_w <= 0 OR bbox_h <= 0 ORDER BY ord`);
    await add('area_inconsistent_with_bbox', num(q?.bad_area), 'annotations have an area larger than their box (or negative)',
      `SELECT annotation_id AS x FROM ${AN} WHERE area > bbox_w * bbox_h * 1.001 + 1 OR area < 0 ORDER BY ord`);
    await add('missing_bbox', num(q?.no_bbox), 'annotations have no bbox', `SELECT annotation_id AS x FROM ${AN} a WHERE ${noBox} ORDER BY ord`);
    await add('non_finite_bbox', num(q?.box_not_finite), 'boxes hold NaN, Infinity or null: stored as no box, and left out of every box statistic',
      `SELECT annotation_id AS x FROM ${AN} WHERE quirks & ${ANNOTATION_QUIRKS.bboxNotFinite} <> 0 ORDER BY ord`);
    await add('non_finite_area', num(q?.area_not_finite), 'areas are NaN or Infinity: stored as null, and left out of every statistic',
      `SELECT annotation_id AS x FROM ${AN} WHERE quirks & ${ANNOTATION_QUIRKS.areaNotFinite} <> 0 ORDER BY ord`);

    const [unused] = await this.rows(`SELECT count(*) AS n FROM categories WHERE dataset_id = $1 AND annotation_count = 0`, [ds]);
    await add('unused_categories', num(unused?.n),
      'categories have no annotation (Roboflow exports add a placeholder category named after the supercategory)',
      `SELECT name AS x FROM categories WHERE dataset_id = $1 AND annotation_count = 0 ORDER BY category_id`, [ds]);
    const [empty] = await this.rows(`SELECT count(*) AS n FROM samples WHERE dataset_id = $1 AND annotation_count = 0`, [ds]);
    await add('images_without_annotations', num(empty?.n), 'images have no annotation (kept: they are often true negatives)',
      `SELECT file_name AS x FROM samples WHERE dataset_id = $1 AND annotation_count = 0 ORDER BY ord`, [ds]);
    const refused = `quirks & ${IMAGE_QUIRKS.fileNameOutsideFolder} <> 0${this.listedFiles ? ` OR file_name IN (SELECT path FROM ${this.t('f')} WHERE NOT readable)` : ''}`;
    const [refusedCount] = await this.rows(`SELECT count(*) AS n FROM ${S} WHERE ${refused}`);
    await add('image_files_refused', num(refusedCount?.n),
      'images have a file name that leads out of the image folder, or a file that is a link out of the data roots: kept as samples, their image is refused (403)',
      `SELECT file_name AS x FROM ${S} WHERE ${refused} ORDER BY ord`);
    const missingFile = `dataset_id = $1 AND file_missing AND ord NOT IN (SELECT ord FROM ${S} WHERE ${refused})`;
    const [missing] = await this.rows(`SELECT count(*) AS n FROM samples WHERE ${missingFile}`, [ds]);
    await add('image_files_missing', num(missing?.n), 'images listed in the file are not in the image folder',
      `SELECT file_name AS x FROM samples WHERE ${missingFile} ORDER BY ord`, [ds]);
    const [dupNames] = await this.rows(`SELECT count(*) AS n FROM (SELECT file_name FROM ${S} GROUP BY file_name HAVING count(*) > 1)`);
    await add('duplicate_file_names', num(dupNames?.n), 'file names are used by more than one image',
      `SELECT file_name AS x FROM ${S} GROUP BY file_name HAVING count(*) > 1 ORDER BY min(ord)`);
    // A size the file gives in a form that is not one is invalid_image_size, not missing.
    const noSize = `(width IS NULL OR height IS NULL) AND quirks & ${IMAGE_QUIRKS.invalidSize} = 0`;
    const [img] = await this.rows(
      `SELECT count(*) FILTER (WHERE ${noSize}) AS no_size,
         count(*) FILTER (WHERE quirks & ${IMAGE_QUIRKS.licenseNotAnId} <> 0) AS license,
         count(*) FILTER (WHERE quirks & ${IMAGE_QUIRKS.sizeAsText} <> 0) AS size_text,
         count(*) FILTER (WHERE quirks & ${IMAGE_QUIRKS.invalidSize} <> 0) AS bad_size
       FROM ${S}`,
    );
    await add('images_without_size', num(img?.no_size), 'images have no width or height', `SELECT file_name AS x FROM ${S} WHERE ${noSize} ORDER BY ord`);
    const flagged = (quirk: number) => `SELECT file_name AS x FROM ${S} WHERE quirks & ${quirk} <> 0 ORDER BY ord`;
    await add('license_not_an_id', num(img?.license), 'images give a "license" that is not a license id (text such as "CC"): kept in metadata.license, license_id left empty',
      flagged(IMAGE_QUIRKS.licenseNotAnId));
    await add('image_size_as_text', num(img?.size_text), 'images give their width or height as text: read as the number', flagged(IMAGE_QUIRKS.sizeAsText));
    await add('invalid_image_size', num(img?.bad_size), 'images give a width or height that is not a positive integer: kept in metadata, the image has no size',
      flagged(IMAGE_QUIRKS.invalidSize));
    await add('annotation_values_kept_in_extra', num(q?.kept_in_extra),
      'annotations give "area", "iscrowd", "score" or "num_keypoints" a value of another type: kept in extra, the field left empty (iscrowd: false)',
      `SELECT annotation_id AS x FROM ${AN} WHERE quirks & ${ANNOTATION_QUIRKS.keptInExtra} <> 0 ORDER BY ord`);
    const unstored = this.licenses.filter((l) => l.id === null);
    if (unstored.length > 0) {
      out.push({
        code: 'licenses_not_stored', count: unstored.length, message: '"licenses" entries without an integer id were not stored (images keep their own "license")',
        examples: unstored.slice(0, EXAMPLES).map((l) => l.name ?? ''),
      });
    }
    return out;
  }

  /** The first samples in file order whose file exists (for thumbnails made during ingestion). */
  async firstPresentSamples(limit: number): Promise<{ image_id: number; file_name: string }[]> {
    return (await this.rows(
      `SELECT image_id, file_name FROM samples WHERE dataset_id = $1 AND NOT file_missing ORDER BY ord LIMIT $2::INTEGER`,
      [this.datasetId, limit],
    )) as { image_id: number; file_name: string }[];
  }

  async commit(d: DatasetRecord, counts: FinalCounts): Promise<Date> {
    const createdAt = new Date();
    await this.conn.run(
      `INSERT INTO datasets (id, name, format, source_path, image_dir, split, image_count, annotation_count, category_count, info, warnings,
         plugin_stats, bytes, ingest_seconds, created_at, revision)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::JSON, $11::JSON, $12::JSON, $13, $14, $15::TIMESTAMPTZ, 0)`,
      [
        d.id, d.name, d.format, d.sourcePath, d.imageDir, d.split, counts.imageCount, counts.annotationCount, counts.categoryCount,
        d.info ? JSON.stringify(d.info) : null, JSON.stringify(counts.warnings), d.pluginStats ? JSON.stringify(d.pluginStats) : null,
        d.bytes, d.ingestSeconds, createdAt.toISOString(),
      ],
    );
    await this.conn.run(
      `INSERT INTO label_sets VALUES ($1, 0, 'ground_truth', 'ground_truth', $2, $3, $4::TIMESTAMPTZ, 0, 0)`,
      [d.id, d.sourcePath, counts.annotationCount, createdAt.toISOString()],
    );
    await this.conn.run('COMMIT');
    this.done = true;
    this.conn.closeSync();
    await this.enter(null);
    return createdAt;
  }

  /**
   * Instead of commit(): the rows written (under this writer's provisional id) become new splits
   * of an existing dataset, in the same transaction (db/dataset-merge.ts), then commit.
   */
  async commitInto(placement: MergePlacement, counts: FinalCounts): Promise<MergeOutcome> {
    const outcome = await mergeInto({ rows: (sql, p) => this.rows(sql, p), exec: (sql, p) => this.exec(sql, p) }, this.datasetId, placement, counts.warnings);
    await this.conn.run('COMMIT');
    this.done = true;
    this.conn.closeSync();
    await this.enter(null);
    return outcome;
  }

  /** Safe to call at any point and more than once. */
  async rollback(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const a of this.appenders()) a.discard();
    try {
      await this.conn.run('ROLLBACK');
    } finally {
      this.conn.closeSync();
      await this.enter(null);
    }
  }

  private async enter(phase: IngestPhase | null): Promise<void> {
    const from = this.phase;
    this.phase = phase;
    await this.db.ingestResources.move(from, phase);
  }

  private appenders(): ChunkedAppender[] {
    return [this.samples, this.annotations, this.direct, this.shapes, this.partAnnotations, this.partShapes, this.files].filter((a) => a !== null);
  }

  private async rows(sql: string, params: (string | number | null)[] = []): Promise<Row[]> {
    const t0 = performance.now();
    const r = await this.conn.runAndReadAll(sql, params);
    this.log.debug({ ms: Math.round(performance.now() - t0), sql: sql.replace(/\s+/g, ' ').slice(0, 120) }, 'ingest query');
    return r.getRowObjectsJS().map(plainRow);
  }

  /** A statement of the final step, timed at debug level: where an ingest's last seconds go. */
  private async exec(sql: string, params: (string | number | null)[] = []): Promise<void> {
    const t0 = performance.now();
    await this.conn.run(sql, params);
    this.log.debug({ ms: Math.round(performance.now() - t0), sql: sql.replace(/\s+/g, ' ').slice(0, 120) }, 'ingest statement');
  }
}

function appendText(a: DuckDBAppender, v: string | null | undefined): void {
  if (v == null) a.appendNull();
  else a.appendVarchar(v);
}

function num(v: unknown): number {
  return v === null || v === undefined ? 0 : Number(v);
}
