import type { Database } from '../db/connection.js';
import {
  addAnnotationTags, addSampleTags, countTags, missingAnnotationOrds, missingSampleIds, removeAnnotationTags, removeSampleTags,
  tagsOfAnnotations, tagsOfSamples, type AnnotationSelection, type SampleSelection,
} from '../db/tags.js';
import type { Transaction } from '../db/connection.js';
import { hasFilter } from '../db/samples.js';
import type { DatasetService } from '../datasets/datasets.js';
import type { SampleFilter } from '../datasets/filter.js';
import type { SampleService } from '../datasets/samples.js';
import { BadInputError, DataVisorError } from '../errors.js';
import type { PredictionService } from '../predictions/predictions.js';
import { checkTags } from './names.js';
import type { Spelling, ViewService } from './views.js';

/** Ids one call may name; more go by a filter (or a view). */
export const IDS_MAX = 100_000;

/** Samples to tag: their image ids, or those a filter and/or a saved view select (`filter: {}`: every sample). */
export interface SampleTarget {
  sampleIds?: readonly number[] | null;
  filter?: SampleFilter | null;
  viewId?: string | null;
}

/**
 * Annotations to tag: their positions (`ord`), or those of the samples a filter and/or view
 * select, of the ground truth unless `predictions` names runs, of any category unless `categories`
 * names some.
 */
export interface AnnotationTarget {
  annotationOrds?: readonly number[] | null;
  filter?: SampleFilter | null;
  viewId?: string | null;
  categories?: readonly string[] | null;
  predictions?: readonly string[] | null;
}

export interface TagChange {
  /** Samples (annotations) that gained a tag, or lost one. */
  changed: number;
  /** The dataset's revision after the call: moved on only when something changed. */
  revision: number;
}

export interface TagCount {
  tag: string;
  samples: number;
  annotations: number;
}

const asIs: Spelling = (f) => f;

/**
 * Tags on samples and annotations (docs/curation.md). A call adds or removes its tags on every
 * object it names in one transaction, as one SQL statement over them (a filter is never read into
 * JavaScript). A call that changes nothing leaves the dataset's revision as it was, so caches,
 * ETags and cursors stay valid; one that changes something moves it on.
 */
export class TagService {
  constructor(
    private readonly deps: { db: Database; datasets: DatasetService; samples: SampleService; views: ViewService; predictions: PredictionService },
  ) {}

  tagSamples(datasetId: string, target: SampleTarget, tags: readonly string[], spell: Spelling = asIs): Promise<TagChange> {
    return this.changeSamples(datasetId, target, tags, spell, addSampleTags);
  }

  untagSamples(datasetId: string, target: SampleTarget, tags: readonly string[], spell: Spelling = asIs): Promise<TagChange> {
    return this.changeSamples(datasetId, target, tags, spell, removeSampleTags);
  }

  tagAnnotations(datasetId: string, target: AnnotationTarget, tags: readonly string[], spell: Spelling = asIs): Promise<TagChange> {
    return this.changeAnnotations(datasetId, target, tags, spell, addAnnotationTags);
  }

  untagAnnotations(datasetId: string, target: AnnotationTarget, tags: readonly string[], spell: Spelling = asIs): Promise<TagChange> {
    return this.changeAnnotations(datasetId, target, tags, spell, removeAnnotationTags);
  }

  /** Samples and annotations per tag, in tag order; with a filter or view, those of the samples they select. */
  async counts(datasetId: string, filter: SampleFilter | null, viewId?: string | null): Promise<TagCount[]> {
    await this.deps.datasets.get(datasetId);
    const selected = await this.deps.views.filterOf(datasetId, viewId, filter ?? {});
    const query = hasFilter(selected) ? await this.deps.samples.toQuery(datasetId, selected) : null;
    return (await countTags(this.deps.db, datasetId, query)).map((c) => ({ tag: c.tag, samples: c.samples, annotations: c.annotations }));
  }

  /** For DataLoader: the tags of samples of one dataset (by ord), in key order, each list in tag order. */
  async ofSamples(datasetId: string, ords: readonly number[]): Promise<string[][]> {
    const found = await tagsOfSamples(this.deps.db, datasetId, ords);
    return ords.map((o) => found.get(o) ?? []);
  }

  async ofAnnotations(datasetId: string, ords: readonly number[]): Promise<string[][]> {
    const found = await tagsOfAnnotations(this.deps.db, datasetId, ords);
    return ords.map((o) => found.get(o) ?? []);
  }

  private async changeSamples(
    datasetId: string, target: SampleTarget, tags: readonly string[], spell: Spelling,
    apply: (tx: Transaction, datasetId: string, sel: SampleSelection, tags: readonly string[]) => Promise<number>,
  ): Promise<TagChange> {
    const names = checkTags(tags, spell('tags'), { nonEmpty: true });
    await this.deps.datasets.get(datasetId);
    const ids = checkIds(target.sampleIds, { filter: target.filter, viewId: target.viewId }, 'sampleIds', spell);
    let selection: SampleSelection;
    if (ids) {
      const missing = await missingSampleIds(this.deps.db, datasetId, ids);
      if (missing.count > 0) throw missingError(missing, spell('sampleIds'), `sample of dataset ${datasetId}`);
      selection = { sampleIds: ids };
    } else {
      selection = { filter: await this.selectedFilter(datasetId, target) };
    }
    return this.run(datasetId, (tx) => apply(tx, datasetId, selection, names));
  }

  private async changeAnnotations(
    datasetId: string, target: AnnotationTarget, tags: readonly string[], spell: Spelling,
    apply: (tx: Transaction, datasetId: string, sel: AnnotationSelection, tags: readonly string[]) => Promise<number>,
  ): Promise<TagChange> {
    const names = checkTags(tags, spell('tags'), { nonEmpty: true });
    await this.deps.datasets.get(datasetId);
    const { filter, viewId, categories, predictions } = target;
    const ords = checkIds(target.annotationOrds, { filter, viewId, categories, predictions }, 'annotationOrds', spell);
    let selection: AnnotationSelection;
    if (ords) {
      const missing = await missingAnnotationOrds(this.deps.db, datasetId, ords);
      if (missing.count > 0) throw missingError(missing, spell('annotationOrds'), `annotation of dataset ${datasetId}`);
      selection = { ords };
    } else {
      const filter = await this.selectedFilter(datasetId, target);
      const labelSets = target.predictions == null ? [0] : await Promise.all(target.predictions.map(async (name) => (await this.deps.predictions.get(datasetId, name)).labelSet));
      let categoryIds: number[] | undefined;
      if (target.categories != null) {
        const wanted = new Set(target.categories);
        categoryIds = (await this.deps.datasets.categories(datasetId)).filter((c) => wanted.has(c.name)).map((c) => c.categoryId);
      }
      selection = { filter, labelSets, categoryIds };
    }
    return this.run(datasetId, (tx) => apply(tx, datasetId, selection, names));
  }

  private async selectedFilter(datasetId: string, target: { filter?: SampleFilter | null; viewId?: string | null }) {
    return this.deps.samples.toQuery(datasetId, await this.deps.views.filterOf(datasetId, target.viewId, target.filter ?? {}));
  }

  /** One change of the dataset, committed (revision + 1) only when it changed something. */
  private async run(datasetId: string, work: (tx: Transaction) => Promise<number>): Promise<TagChange> {
    const change = await this.deps.datasets.openChange(datasetId);
    try {
      const changed = await work(change.tx);
      if (changed > 0) return { changed, revision: await change.commit() };
    } finally {
      await change.rollback();
    }
    return { changed: 0, revision: (await this.deps.datasets.get(datasetId)).revision };
  }
}

/**
 * The ids of a target, or null when it selects by filter or view: exactly one of the two ways
 * must be given (an absent filter never means "everything": that is `filter: {}`).
 */
function checkIds(ids: readonly number[] | null | undefined, other: Record<string, unknown>, idsField: string, spell: Spelling): number[] | null {
  const by = Object.entries(other).filter(([, v]) => v != null).map(([k]) => spell(k));
  if (ids == null) {
    if (!by.includes(spell('filter')) && !by.includes(spell('viewId'))) {
      throw new BadInputError(`name what to tag: ${spell(idsField)}, or ${spell('filter')} ({} for everything) and/or ${spell('viewId')}`);
    }
    return null;
  }
  if (by.length > 0) throw new BadInputError(`give either ${spell(idsField)} or ${by.join(' and ')}, not both`);
  if (ids.length > IDS_MAX) throw new BadInputError(`${spell(idsField)} may hold at most ${IDS_MAX} ids, got ${ids.length}; select more with a filter or a view`);
  const bad = ids.find((id) => !Number.isSafeInteger(id));
  if (bad !== undefined) throw new BadInputError(`${spell(idsField)} must hold integers, got ${JSON.stringify(bad)}`);
  return [...ids];
}

function missingError(missing: { count: number; examples: number[] }, label: string, what: string): DataVisorError {
  const more = missing.count > missing.examples.length ? ', …' : '';
  return new DataVisorError('NOT_FOUND', `${label}: ${missing.count} of the ids name no ${what} (${missing.examples.join(', ')}${more}); nothing was changed`);
}
