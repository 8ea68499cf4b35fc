import { ByteLru } from '../common/byte-lru.js';
import { trimWindow, type Database, type Row } from '../db/connection.js';
import { DETECTION_OUTCOMES, ERROR_KINDS, GROUND_TRUTH_OUTCOMES } from '../db/evaluations.js';
import { countObjectRows, getObjectWithSample, listObjectRows, type ObjectQueryFilter } from '../db/objects.js';
import type { DatasetService } from '../datasets/datasets.js';
import type { SampleFilter } from '../datasets/filter.js';
import { decodeObjectCursor, encodeObjectCursor, planPage, toConnection, type Connection, type ConnectionArgs } from '../datasets/paging.js';
import { parseSampleId, type SampleService } from '../datasets/samples.js';
import { BadInputError, DataVisorError, NotFoundError } from '../errors.js';
import type { EvaluationService } from '../evaluation/evaluations.js';
import { isDatasetId } from '../ids.js';
import type { Thumbnail, ThumbnailService, ThumbnailSize } from '../images/thumbnails.js';
import type { PredictionService } from '../predictions/predictions.js';
import type { StorageService } from '../storage/index.js';
import { objectViewHash, type ObjectFilter, type ObjectSort } from './object-filter.js';

/** One annotation as a row of the object view. */
export interface DatasetObject {
  datasetId: string;
  /** Unique in the dataset: the annotation's position (`Annotation.position`). */
  ord: number;
  /** The annotation id of the file. */
  annotationId: number;
  sampleId: number;
  sampleOrd: number;
  categoryId: number;
  categoryName: string | null;
  bbox: { x: number; y: number; w: number; h: number } | null;
  area: number | null;
  isCrowd: boolean;
  score: number | null;
  labelSet: number;
  /** `ground_truth` or the prediction run's name. */
  labelSetName: string;
  /** With an evaluation in the filter: the object's outcome in it. */
  evaluation: { outcome: string; iou: number | null; error: string | null } | null;
  /** The dataset's revision when the row was read: crop URLs carry it (see crop()). */
  revision: number;
  /** The row's value of the sort (-Infinity where missing): what its cursor carries. */
  sortKey: number;
}

/** A crop and whether its URL pins its bytes (the revision it named is the current one). */
export interface Crop {
  thumbnail: Thumbnail;
  immutable: boolean;
}

/** Padding of a crop when none is asked for: a tenth of the box on each side shows its context. */
export const DEFAULT_CROP_PAD = 0.1;
/** More padding than this is the whole image, which the thumbnail route serves. */
export const MAX_CROP_PAD = 2;

interface CropSource {
  imageId: number;
  fileName: string;
  box: { x: number; y: number; w: number; h: number } | null;
}

/**
 * The object view (docs/curation.md, "Objects"): a dataset's annotations as rows under a sample
 * filter and object conditions, in keyset pages, and their crops. REST and GraphQL both call page().
 */
export class ObjectService {
  /** ord → what a crop needs, per dataset revision (~150 bytes an entry): a cached crop costs no query. */
  private readonly sources = new ByteLru<CropSource>(4 * 1024 * 1024, (s) => s.fileName.length * 2 + 120);

  constructor(
    private readonly deps: {
      db: Database;
      datasets: DatasetService;
      samples: SampleService;
      predictions: PredictionService;
      evaluations: EvaluationService;
      thumbnails: ThumbnailService;
      storage: StorageService;
    },
  ) {}

  /**
   * A page of objects as a Relay connection (`first`/`after` or `last`/`before`, at most 200).
   * NOT_FOUND for an unknown dataset, run or evaluation; BAD_USER_INPUT for conditions that cannot
   * hold together (an IoU sort without an evaluation, an outcome of the other side) and for a
   * cursor of another dataset, revision, filter or sort.
   */
  async page(datasetId: string, samples: SampleFilter, objects: ObjectFilter, sort: ObjectSort, args: ConnectionArgs): Promise<Connection<DatasetObject>> {
    const dataset = await this.deps.datasets.get(datasetId);
    const scope = { datasetId, revision: dataset.revision, hash: objectViewHash(samples, objects, sort) };
    const plan = planPage(args, (arg, cursor) => decodeObjectCursor(arg, cursor, scope));
    const [sampleQuery, { query, labelSetName }, names] = await Promise.all([
      this.deps.samples.toQuery(datasetId, samples),
      this.toQuery(datasetId, objects, sort),
      this.categoryNames(datasetId),
    ]);
    const rows = await listObjectRows(this.deps.db, datasetId, sampleQuery, query, {
      sort: sort.field, descending: sort.descending, direction: plan.direction, cursor: plan.cursor, limit: plan.limit,
    });
    const { hasMore } = trimWindow(rows, plan.limit, plan.direction === 'backward' ? 'before' : 'after');
    const side = query.evaluation?.side;
    const items = rows.map((r) => toObject(r, datasetId, dataset.revision, names, labelSetName, side));
    return toConnection(plan, items, hasMore, (o) => encodeObjectCursor(scope, o.sortKey, o.ord), () => countObjectRows(this.deps.db, datasetId, sampleQuery, query));
  }

  /** The object conditions in ids and codes: the label set by name, the evaluation and its side. */
  private async toQuery(datasetId: string, f: ObjectFilter, sort: ObjectSort): Promise<{ query: ObjectQueryFilter; labelSetName: string }> {
    const evaluation = f.evaluation ? await this.deps.evaluations.get(datasetId, f.evaluation.id) : null;
    let labelSet = 0;
    let labelSetName = f.labelSet ?? 'ground_truth';
    if (f.labelSet === undefined && evaluation) {
      // The evaluation names its run: listing its predictions is what "all FPs of a run" means.
      labelSet = evaluation.labelSet;
      labelSetName = evaluation.predictions;
    } else if (f.labelSet !== undefined && f.labelSet !== 'ground_truth') {
      labelSet = (await this.deps.predictions.get(datasetId, f.labelSet)).labelSet;
    }
    const query: ObjectQueryFilter = {
      labelSet,
      minArea: f.minArea, maxArea: f.maxArea, minConfidence: f.minConfidence, maxConfidence: f.maxConfidence, isCrowd: f.isCrowd,
    };
    if (f.categories) {
      const wanted = new Set(f.categories);
      query.categoryIds = (await this.deps.datasets.categories(datasetId)).filter((c) => wanted.has(c.name)).map((c) => c.categoryId);
    }
    if (evaluation && f.evaluation) {
      if (labelSet !== 0 && labelSet !== evaluation.labelSet) {
        throw new BadInputError(`evaluation ${evaluation.id} evaluated the run ${JSON.stringify(evaluation.predictions)}, not ${JSON.stringify(labelSetName)}: leave the label set out or name that run or ground_truth`);
      }
      query.evaluation = labelSet === 0 ? groundTruthSide(evaluation.id, f.evaluation) : detectionSide(evaluation.id, f.evaluation);
    }
    if (sort.field === 'iou' && query.evaluation?.side !== 'detections') {
      throw new BadInputError('sort by iou needs an evaluation and its predictions: give an evaluation id (and no ground_truth label set); IoU is a prediction\'s');
    }
    return { query, labelSetName };
  }

  private async categoryNames(datasetId: string): Promise<Map<number, string>> {
    return new Map((await this.deps.datasets.categories(datasetId)).map((c) => [c.categoryId, c.name]));
  }

  /**
   * The WebP crop of an annotation's box (docs/curation.md, "Crops"). `revision` is what the URL
   * named: an ord's box can change (a prediction run replaced), so only a URL naming the current
   * revision may be cached for good; the bytes are cached by box, so an unchanged box is never
   * decoded twice. NOT_FOUND for an unknown dataset or annotation; UNPROCESSABLE_IMAGE for an
   * annotation without a box, or whose box lies outside its image.
   */
  async crop(datasetId: string, sampleId: string, ordText: string, size: ThumbnailSize, pad: number, revision: number | null): Promise<Crop> {
    checkPad(pad);
    if (!isDatasetId(datasetId) || !/^\d{1,10}$/.test(ordText) || Number(ordText) > 2 ** 31 - 1) throw new NotFoundError(`annotation of dataset ${datasetId}`, ordText);
    const dataset = await this.deps.datasets.get(datasetId);
    const source = await this.cropSource(datasetId, dataset.revision, Number(ordText));
    // The sample is in the path for the router's sake (docs/curation.md, "Crops"); another one's is no address.
    if (parseSampleId(sampleId) !== source.imageId) throw new NotFoundError(`annotation of sample ${sampleId} of dataset ${datasetId}`, ordText);
    if (!source.box) throw new DataVisorError('UNPROCESSABLE_IMAGE', `annotation ${ordText} of dataset ${datasetId} has no box to crop`);
    const thumbnail = await this.deps.thumbnails.get({
      datasetId,
      sampleKey: String(source.imageId),
      size,
      crop: { box: source.box, pad, fault: 'UNPROCESSABLE_IMAGE' },
      loadSource: () => this.deps.storage.imageSource(dataset.imageDir, source.fileName),
    });
    return { thumbnail, immutable: revision === dataset.revision };
  }

  /**
   * The crop of a box given in the URL (pixels of the original): the URL determines the bytes, a
   * sample's image never changes. BAD_USER_INPUT for a box that covers no pixel of the image.
   */
  async cropBox(datasetId: string, sampleId: string, box: { x: number; y: number; w: number; h: number }, size: ThumbnailSize, pad: number): Promise<Thumbnail> {
    checkPad(pad);
    const dataset = await this.deps.datasets.get(datasetId);
    const sample = await this.deps.samples.get(datasetId, sampleId);
    // Checked before any image is read: the image's own size is only known to the renderer.
    if (!Object.values(box).every(Number.isFinite)) throw new BadInputError(`box must be four finite numbers x,y,w,h, got ${Object.values(box).join(',')}`);
    if (box.w <= 0 || box.h <= 0) throw new BadInputError(`box [${box.x}, ${box.y}, ${box.w}, ${box.h}] has no area: its width and height must be above 0`);
    return this.deps.thumbnails.get({
      datasetId,
      sampleKey: String(sample.id),
      size,
      crop: { box, pad, fault: 'BAD_USER_INPUT' },
      loadSource: () => this.deps.storage.imageSource(dataset.imageDir, sample.fileName),
    });
  }

  private async cropSource(datasetId: string, revision: number, ord: number): Promise<CropSource> {
    const key = `${datasetId}@${revision}/${ord}`;
    const hit = this.sources.get(key);
    if (hit) return hit;
    const row = await getObjectWithSample(this.deps.db, datasetId, ord);
    if (!row) throw new NotFoundError(`annotation of dataset ${datasetId}`, ord);
    const source: CropSource = { imageId: row.image_id as number, fileName: row.file_name as string, box: boxOf(row) };
    this.sources.set(key, source);
    return source;
  }
}

function checkPad(pad: number): void {
  if (!Number.isFinite(pad) || pad < 0 || pad > MAX_CROP_PAD) throw new BadInputError(`pad must be a number from 0 to ${MAX_CROP_PAD} (a fraction of the box added on each side), got ${pad}`);
}

const boxOf = (r: Row) => (r.bbox_x === null ? null : { x: r.bbox_x as number, y: r.bbox_y as number, w: r.bbox_w as number, h: r.bbox_h as number });

type EvaluationCondition = NonNullable<ObjectFilter['evaluation']>;

function detectionSide(id: string, e: EvaluationCondition): NonNullable<ObjectQueryFilter['evaluation']> {
  const bad = e.outcomes?.find((o) => !(DETECTION_OUTCOMES as readonly string[]).includes(o));
  if (bad) throw new BadInputError(`evaluation outcome ${JSON.stringify(bad)} is one of ground-truth objects: add the label set ground_truth, or ask predictions for ${DETECTION_OUTCOMES.join(', ')}`);
  if (e.errors?.includes('missed')) throw new BadInputError('evaluation error "missed" is one of ground-truth objects: add the label set ground_truth');
  return {
    id, side: 'detections',
    outcomes: e.outcomes?.map((o) => DETECTION_OUTCOMES.indexOf(o as (typeof DETECTION_OUTCOMES)[number])),
    errors: e.errors?.map((k) => ERROR_KINDS.indexOf(k as (typeof ERROR_KINDS)[number])),
  };
}

/** Ground-truth objects have no error code stored: `missed` is their outcome `fn`. */
function groundTruthSide(id: string, e: EvaluationCondition): NonNullable<ObjectQueryFilter['evaluation']> {
  const bad = e.outcomes?.find((o) => !(GROUND_TRUTH_OUTCOMES as readonly string[]).includes(o));
  if (bad) throw new BadInputError(`evaluation outcome ${JSON.stringify(bad)} is one of predictions: leave the label set out (the evaluated run), or ask ground truth for ${GROUND_TRUTH_OUTCOMES.join(', ')}`);
  const badError = e.errors?.find((k) => k !== 'missed');
  if (badError) throw new BadInputError(`evaluation error ${JSON.stringify(badError)} is one of predictions; ground-truth objects only have "missed"`);
  let outcomes = e.outcomes;
  if (e.errors) outcomes = (outcomes ?? ['fn']).filter((o) => o === 'fn');
  return { id, side: 'ground_truth', outcomes: outcomes?.map((o) => GROUND_TRUTH_OUTCOMES.indexOf(o as (typeof GROUND_TRUTH_OUTCOMES)[number])) };
}

function toObject(r: Row, datasetId: string, revision: number, names: ReadonlyMap<number, string>, labelSetName: string, side: 'detections' | 'ground_truth' | undefined): DatasetObject {
  let evaluation: DatasetObject['evaluation'] = null;
  if (side) {
    const outcome = (side === 'detections' ? DETECTION_OUTCOMES : GROUND_TRUTH_OUTCOMES)[r.eval_outcome as number]!;
    const error = r.eval_error == null ? (outcome === 'fn' ? 'missed' : null) : ERROR_KINDS[r.eval_error as number]!;
    evaluation = { outcome, iou: (r.eval_iou as number | null) ?? null, error };
  }
  return {
    datasetId,
    ord: r.ord as number,
    annotationId: r.annotation_id as number,
    sampleId: r.image_id as number,
    sampleOrd: r.sample_ord as number,
    categoryId: r.category_id as number,
    categoryName: names.get(r.category_id as number) ?? null,
    bbox: boxOf(r),
    area: (r.area as number | null) ?? null,
    isCrowd: r.is_crowd as boolean,
    score: (r.score as number | null) ?? null,
    labelSet: (r.label_set as number | null) ?? 0,
    labelSetName,
    evaluation,
    revision,
    sortKey: r.sort_key as number,
  };
}
