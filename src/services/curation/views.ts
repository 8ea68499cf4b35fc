import type { Database } from '../db/connection.js';
import { hasFilter } from '../db/samples.js';
import { deleteViewRow, getViewRow, insertViewRow, listViewRowsOf, updateViewRow, viewNameTaken, type ViewRow } from '../db/views.js';
import type { DatasetService } from '../datasets/datasets.js';
import { SAMPLE_FILTER_FIELDS, toSampleFilter, type SampleFilter, type SampleFilterInput } from '../datasets/filter.js';
import { toSampleSort, type SampleSort, type SampleSortInput } from '../datasets/sort.js';
import { BadInputError, DataVisorError, NotFoundError } from '../errors.js';
import { isId, newId } from '../ids.js';
import { checkName } from './names.js';

/** A saved view: its filter and sort in the GraphQL spelling (SampleFilterInput, SampleSortInput). */
export type View = ViewRow & { filter: SampleFilterInput; sort: SampleSortInput | null };

export interface ViewInput {
  name?: string | null;
  filter?: SampleFilterInput | null;
  /** `null` clears the sort; absent keeps it (update) or means none (create). */
  sort?: unknown;
}

/** How an edge spells an input field in its errors (`sampleIds` → `sample_ids`). */
export type Spelling = (field: string) => string;
const asIs: Spelling = (f) => f;

/**
 * Saved views (docs/curation.md): a named filter and sort per dataset, which every sample list and
 * count accepts by id. Each change of a view goes through DatasetService.change and so bumps the
 * dataset's revision: REST's page cache and ETags, and GraphQL cursors, key on the revision, and a
 * page of `view=<id>` must not outlive a change of what the view selects.
 */
export class ViewService {
  constructor(private readonly deps: { db: Database; datasets: DatasetService }) {}

  /** Oldest first; NOT_FOUND for an unknown dataset. */
  async list(datasetId: string): Promise<View[]> {
    await this.deps.datasets.get(datasetId);
    return (await listViewRowsOf(this.deps.db, [datasetId]))[0] as View[];
  }

  /** For DataLoader: the views of many datasets, in key order. */
  async listMany(datasetIds: readonly string[]): Promise<View[][]> {
    return (await listViewRowsOf(this.deps.db, datasetIds)) as View[][];
  }

  /** A view of a dataset; NOT_FOUND for an unknown dataset, an unknown view or a view of another dataset. */
  async get(datasetId: string, viewId: string): Promise<View> {
    await this.deps.datasets.get(datasetId);
    const view = isId(viewId) ? await getViewRow(this.deps.db, viewId) : undefined;
    if (!view || view.datasetId !== datasetId) throw new NotFoundError(`view of dataset ${datasetId}`, viewId);
    return view as View;
  }

  /** A view by its id alone (ids are unique across datasets). */
  async find(viewId: string): Promise<View> {
    const view = isId(viewId) ? await getViewRow(this.deps.db, viewId) : undefined;
    if (!view) throw new NotFoundError('view', viewId);
    return view as View;
  }

  /** CONFLICT when the dataset has a view of that name. */
  async create(datasetId: string, input: ViewInput, spell: Spelling = asIs): Promise<View> {
    const name = checkName(input.name, spell('name'));
    const filter = checkFilter(input.filter ?? {}, spell);
    const sort = checkSort(input.sort ?? null, spell('sort'));
    const id = newId();
    await this.deps.datasets.change(datasetId, async (tx) => {
      if (await viewNameTaken(tx, datasetId, name)) throw conflict(datasetId, name);
      await insertViewRow(tx, { id, datasetId, name, filter, sort });
    });
    return this.get(datasetId, id);
  }

  /** Renames a view or replaces its filter or sort (the fields given); `datasetId`, when given, must be the view's. */
  async update(viewId: string, input: ViewInput, spell: Spelling = asIs, datasetId?: string): Promise<View> {
    const view = datasetId === undefined ? await this.find(viewId) : await this.get(datasetId, viewId);
    const name = input.name == null ? view.name : checkName(input.name, spell('name'));
    const filter = input.filter == null ? view.filter : checkFilter(input.filter, spell);
    const sort = input.sort === undefined ? view.sort : checkSort(input.sort, spell('sort'));
    await this.deps.datasets.change(view.datasetId, async (tx) => {
      if (!(await getViewRow(tx, viewId))) throw new NotFoundError('view', viewId);
      if (name !== view.name && (await viewNameTaken(tx, view.datasetId, name, viewId))) throw conflict(view.datasetId, name);
      await updateViewRow(tx, { id: viewId, name, filter, sort });
    });
    return this.get(view.datasetId, viewId);
  }

  async delete(viewId: string, datasetId?: string): Promise<View> {
    const view = datasetId === undefined ? await this.find(viewId) : await this.get(datasetId, viewId);
    await this.deps.datasets.change(view.datasetId, async (tx) => {
      if (!(await getViewRow(tx, viewId))) throw new NotFoundError('view', viewId);
      await deleteViewRow(tx, viewId);
    });
    return view;
  }

  /**
   * The samples a request selects: the view's filter AND the request's own (either may be empty).
   * NOT_FOUND for a view that is not the dataset's.
   */
  async filterOf(datasetId: string, viewId: string | null | undefined, filter: SampleFilter): Promise<SampleFilter> {
    return (await this.sliceOf(datasetId, viewId, filter, null)).filter;
  }

  /** A request's filter as filterOf() makes it, and its sort: the one asked for, else the view's (else file order). */
  async sliceOf(datasetId: string, viewId: string | null | undefined, filter: SampleFilter, sort: SampleSort | null): Promise<{ filter: SampleFilter; sort: SampleSort | null }> {
    if (viewId == null) return { filter, sort };
    const view = await this.get(datasetId, viewId);
    const saved = toSampleFilter(view.filter, (f) => `filter.${f} of view "${view.name}"`);
    const both = !hasFilter(filter) ? saved : hasFilter(saved) ? { ...saved, also: filter } : filter;
    return { filter: both, sort: sort ?? toSampleSort(view.sort, (p) => `sort.${p} of view "${view.name}"`) };
  }
}

const conflict = (datasetId: string, name: string) =>
  new DataVisorError('CONFLICT', `dataset ${datasetId} already has a view named ${JSON.stringify(name)}; choose another name, or rename or delete that view`);

/** A filter checked as every sample list checks it, stored as given minus absent fields. */
function checkFilter(input: unknown, spell: Spelling): SampleFilterInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new BadInputError(`${spell('filter')} must be an object, got ${JSON.stringify(input)}`);
  const unknown = Object.keys(input).filter((k) => !(k in SAMPLE_FILTER_FIELDS));
  if (unknown.length > 0) throw new BadInputError(`${spell('filter')} has no field ${unknown.map((k) => JSON.stringify(k)).join(', ')}; its fields are ${Object.keys(SAMPLE_FILTER_FIELDS).join(', ')}`);
  toSampleFilter(input as SampleFilterInput, (f) => spell(`filter.${f}`));
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v != null)) as SampleFilterInput;
}

function checkSort(input: unknown, label: string): SampleSortInput | null {
  if (input === null) return null;
  if (typeof input !== 'object' || Array.isArray(input)) throw new BadInputError(`${label} must be an object {field, direction, …}, got ${JSON.stringify(input)}`);
  // Checked as every sample list checks a sort, and kept in its canonical form (`{field: 'file_name', direction: 'desc'}`);
  // an unknown category, run or evaluation is found when the view is used, as they can come and go.
  return toSampleSort(input as SampleSortInput, (p) => `${label}.${p}`);
}
