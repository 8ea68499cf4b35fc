import { DATASET_ID_PATTERN } from '../ids.js';
import type { DatasetKey } from '../db/datasets.js';
import { BadInputError } from '../errors.js';

/**
 * Paging in one place: page sizes, Relay arguments as a keyset window, a window's rows as a
 * connection, and cursors, encoded and checked.
 *
 * A cursor is base64url of a short text that carries the sort key, never an offset, so page
 * 2,000 costs what page 1 costs:
 * - samples: `S2:<datasetId>:<revision>:<ord>:<filterHash>`: `ord` is the file position (the
 *   stable order); the dataset id, its revision and a hash of the filter make a cursor from
 *   another dataset, an earlier state of it or another filter a BAD_USER_INPUT error instead of a
 *   silently wrong page.
 * - datasets: `D1:<createdMs>:<datasetId>`: the (created_at, id) key of the newest-first list.
 */

/** The largest page any API hands out: a page of 200 samples with annotations is still a few ms. */
export const MAX_PAGE_SIZE = 200;

export function checkPageSize(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE) {
    throw new BadInputError(`${name} must be an integer between 0 and ${MAX_PAGE_SIZE}, got ${n}`);
  }
}

/** Page size when neither `first` nor `last` is given. */
export const DEFAULT_PAGE_SIZE = 50;

export interface ConnectionArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface PagePlan<K> {
  /** forward = `first`/`after` (file order); backward = `last`/`before`. */
  direction: 'forward' | 'backward';
  limit: number;
  /** The decoded `after` or `before` cursor. */
  cursor: K | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface Connection<T> {
  edges: Edge<T>[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  /** Counted only when the query asks for it. */
  totalCount: () => Promise<number>;
}

/**
 * Checks the arguments and picks the direction. Forward paging is `first` + `after`, backward is
 * `last` + `before`; mixing them is refused rather than half-supported.
 */
export function planPage<K>(args: ConnectionArgs, decode: (arg: 'after' | 'before', cursor: string) => K): PagePlan<K> {
  const { first, after, last, before } = args;
  if (first != null && last != null) throw new BadInputError('Pass first or last, not both: first pages forward (with after), last pages backward (with before)');
  if (after != null && before != null) throw new BadInputError('Pass after or before, not both');
  if (first != null && before != null) throw new BadInputError('first pages forward and goes with after; use last with before');
  if (last != null && after != null) throw new BadInputError('last pages backward and goes with before; use first with after');
  if (first != null) checkPageSize('first', first);
  if (last != null) checkPageSize('last', last);
  if (last != null || before != null) {
    return { direction: 'backward', limit: last ?? DEFAULT_PAGE_SIZE, cursor: before != null ? decode('before', before) : null };
  }
  return { direction: 'forward', limit: first ?? DEFAULT_PAGE_SIZE, cursor: after != null ? decode('after', after) : null };
}

/**
 * A window of rows (in list order) as a Relay connection. `hasMore` is what the service learned
 * from its extra row, in the window's direction. The other side needs no query: a cursor always
 * names a row that matched the same filter in the same unchanged dataset, so when one was given
 * there is at least that row on the other side of the page.
 */
export function toConnection<T>(
  plan: PagePlan<unknown>,
  items: readonly T[],
  hasMore: boolean,
  cursorOf: (item: T) => string,
  count: () => Promise<number>,
): Connection<T> {
  const edges = items.map((node) => ({ cursor: cursorOf(node), node }));
  const forward = plan.direction === 'forward';
  let total: Promise<number> | undefined;
  return {
    edges,
    pageInfo: {
      hasNextPage: forward ? hasMore : plan.cursor !== null,
      hasPreviousPage: forward ? plan.cursor !== null : hasMore,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount: () => (total ??= count()),
  };
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

function unb64(arg: string, cursor: string): string {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw malformed(arg, cursor);
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

const malformed = (arg: string, cursor: string) =>
  new BadInputError(`${arg}: ${JSON.stringify(cursor.slice(0, 80))} is not a cursor of this connection; pass a cursor exactly as an edge or pageInfo gave it`);

export interface SampleCursorScope {
  datasetId: string;
  revision: number;
  filterHash: string;
}

export function encodeSampleCursor(scope: SampleCursorScope, ord: number): string {
  return b64(`S2:${scope.datasetId}:${scope.revision}:${ord}:${scope.filterHash}`);
}

const SAMPLE_CURSOR = new RegExp(`^S2:(${DATASET_ID_PATTERN}):(\\d{1,15}):(\\d{1,10}):([A-Za-z0-9_-]{8})$`);
const DATASET_CURSOR = new RegExp(`^D1:(\\d{1,15}):(${DATASET_ID_PATTERN})$`);

/** The `ord` a sample cursor carries, once it is known to belong to this dataset and filter. */
export function decodeSampleCursor(arg: string, cursor: string, scope: SampleCursorScope): number {
  const m = SAMPLE_CURSOR.exec(unb64(arg, cursor));
  if (!m) throw malformed(arg, cursor);
  const [, datasetId, revision, ord, hash] = m;
  if (datasetId !== scope.datasetId) throw new BadInputError(`${arg}: the cursor belongs to dataset ${datasetId}, not to ${scope.datasetId}`);
  if (Number(revision) !== scope.revision) {
    throw new BadInputError(`${arg}: dataset ${datasetId} has changed since the cursor was made (revision ${revision}, now ${scope.revision}); start again without a cursor`);
  }
  if (hash !== scope.filterHash) throw new BadInputError(`${arg}: the cursor was made with a different filter; start again without a cursor when the filter changes`);
  const n = Number(ord);
  if (n > 2 ** 31 - 1) throw malformed(arg, cursor);
  return n;
}

export function encodeDatasetCursor(key: DatasetKey): string {
  return b64(`D1:${key.createdMs}:${key.id}`);
}

export function decodeDatasetCursor(arg: string, cursor: string): DatasetKey {
  const m = DATASET_CURSOR.exec(unb64(arg, cursor));
  if (!m) throw malformed(arg, cursor);
  return { createdMs: Number(m[1]), id: m[2]! };
}

/**
 * Objects (services/objects): `O1:<datasetId>:<revision>:<hash>:<key>:<ord>`. `hash` covers the
 * sample filter, the object filter and the sort, `key` is the row's sort value (a sample ord, an
 * area, a score, an IoU; `-inf` where the value is missing) and `ord` the annotation's, which
 * breaks ties. Numbers are written as JavaScript prints them, which reads back as the same double.
 */
export interface ObjectCursorScope {
  datasetId: string;
  revision: number;
  hash: string;
}

export function encodeObjectCursor(scope: ObjectCursorScope, key: number, ord: number): string {
  return b64(`O1:${scope.datasetId}:${scope.revision}:${scope.hash}:${key === -Infinity ? '-inf' : key}:${ord}`);
}

const OBJECT_CURSOR = new RegExp(`^O1:(${DATASET_ID_PATTERN}):(\\d{1,15}):([A-Za-z0-9_-]{8}):(-inf|-?\\d+(?:\\.\\d+)?(?:e[-+]\\d+)?):(\\d{1,10})$`);

export function decodeObjectCursor(arg: string, cursor: string, scope: ObjectCursorScope): { key: number; ord: number } {
  const m = OBJECT_CURSOR.exec(unb64(arg, cursor));
  if (!m) throw malformed(arg, cursor);
  const [, datasetId, revision, hash, key, ord] = m;
  if (datasetId !== scope.datasetId) throw new BadInputError(`${arg}: the cursor belongs to dataset ${datasetId}, not to ${scope.datasetId}`);
  if (Number(revision) !== scope.revision) {
    throw new BadInputError(`${arg}: dataset ${datasetId} has changed since the cursor was made (revision ${revision}, now ${scope.revision}); start again without a cursor`);
  }
  if (hash !== scope.hash) throw new BadInputError(`${arg}: the cursor was made with a different filter or sort; start again without a cursor when they change`);
  const n = Number(ord);
  if (n > 2 ** 31 - 1 || !(key === '-inf' || Number.isFinite(Number(key)))) throw malformed(arg, cursor);
  return { key: key === '-inf' ? -Infinity : Number(key), ord: n };
}
