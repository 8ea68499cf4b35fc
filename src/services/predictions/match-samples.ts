import { categoryIds, countTargetSamples, streamTargetSamples, type ResolvedSamples } from '../db/predictions.js';
import type { Database } from '../db/connection.js';
import { DataVisorError } from '../errors.js';
import { A, type Columns } from '../records/columns.js';

const EXAMPLES = 5;
/** Distinct unknown ids counted at most (a results file of another dataset names every image wrongly). */
const MAX_DISTINCT = 1_000_000;

/**
 * Matches a results file's detections to the dataset as they are read: each `image_id` to its
 * sample, each `category_id` to a category. The samples are held as three typed arrays sorted by
 * the image id the file uses (20 bytes a sample: 2.4 MB at train2017 scale), searched by halves
 * with the last match remembered, since detections come image by image. Unknown ids are counted,
 * with the first positions; once one is seen nothing more is resolved (the import will be refused).
 */
export class SampleMatcher {
  /** Detections matched or refused so far: the next one's position in the file. */
  count = 0;
  private readonly unknownImages = new Unknown('image_id');
  private readonly unknownCategories = new Unknown('category_id');
  private ords = new Int32Array(1024);
  private imageIds = new Float64Array(1024);
  private lastKey = NaN;
  private lastAt = -1;

  private constructor(
    private readonly keys: Float64Array,
    private readonly sampleOrds: Float64Array,
    private readonly sampleImageIds: Float64Array,
    private readonly categories: Set<number>,
    /** Names the samples in errors: the dataset's images, or a split's. */
    private readonly section: string,
  ) {}

  /** The dataset's samples (of `split` when given, matched by the ids the split's own file gave them) and categories. */
  static async load(db: Database, datasetId: string, split: string | null): Promise<SampleMatcher> {
    const n = await countTargetSamples(db, datasetId, split);
    const keys = new Float64Array(n);
    const ords = new Float64Array(n);
    const imageIds = new Float64Array(n);
    let at = 0;
    for await (const chunk of streamTargetSamples(db, datasetId, split)) {
      if (at + chunk.rowCount > n) throw new DataVisorError('INTERNAL', `dataset ${datasetId} changed while its samples were read`);
      keys.set(chunk.numbers(0), at);
      ords.set(chunk.numbers(1), at);
      imageIds.set(chunk.numbers(2), at);
      at += chunk.rowCount;
    }
    const section = split === null ? 'images' : `images of split "${split}"`;
    return new SampleMatcher(keys.subarray(0, at), ords, imageIds, new Set(await categoryIds(db, datasetId)), section);
  }

  /** The samples of a batch's detections; null once any detection so far named an unknown image or category. */
  match(c: Columns): ResolvedSamples | null {
    if (this.ords.length < c.count) {
      this.ords = new Int32Array(c.count * 2);
      this.imageIds = new Float64Array(c.count * 2);
    }
    let refused = this.unknownImages.count + this.unknownCategories.count > 0;
    for (let i = 0; i < c.count; i++, this.count++) {
      const o = i * c.stride;
      const at = this.find(c.nums[o + A.imageId]!);
      const category = c.nums[o + A.categoryId]!;
      if (at < 0) this.unknownImages.add(c.nums[o + A.imageId]!, this.count);
      if (!this.categories.has(category)) this.unknownCategories.add(category, this.count);
      if (at < 0 || !this.categories.has(category)) {
        refused = true;
        continue;
      }
      this.ords[i] = this.sampleOrds[at]!;
      this.imageIds[i] = this.sampleImageIds[at]!;
    }
    return refused ? null : { ords: this.ords, imageIds: this.imageIds };
  }

  /** INVALID_RESULTS naming the first detections with an unknown image id, else with an unknown category id. */
  refuseUnknown(): void {
    this.unknownImages.refuse(this.section);
    this.unknownCategories.refuse('categories');
  }

  private find(key: number): number {
    if (key === this.lastKey) return this.lastAt;
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = keys[mid]!;
      if (k < key) lo = mid + 1;
      else if (k > key) hi = mid - 1;
      else {
        at = mid;
        break;
      }
    }
    this.lastKey = key;
    this.lastAt = at;
    return at;
  }
}

/** Detections naming an id the dataset does not have: how many, how many distinct ids, the first ones. */
class Unknown {
  count = 0;
  private readonly values = new Set<number>();
  private readonly examples: { value: number; position: number }[] = [];

  constructor(private readonly key: 'image_id' | 'category_id') {}

  add(value: number, position: number): void {
    this.count++;
    if (this.values.size < MAX_DISTINCT) this.values.add(value);
    if (this.examples.length < EXAMPLES) this.examples.push({ value, position });
  }

  refuse(section: string): void {
    if (this.count === 0) return;
    const key = this.key;
    const distinct = this.values.size < MAX_DISTINCT ? `${this.values.size}` : `at least ${MAX_DISTINCT}`;
    const examples = this.examples.map((e) => `${key} ${e.value} at [${e.position}]`).join(', ');
    throw new DataVisorError(
      'INVALID_RESULTS',
      `${this.count} prediction(s) name ${distinct} ${key} value(s) that are not in the dataset's ${section} (${examples}${this.count > this.examples.length ? ', …' : ''}); ` +
        `check that the results were made for this dataset`,
    );
  }
}
