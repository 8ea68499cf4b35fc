import { randomBytes } from 'node:crypto';

/**
 * Dataset ids: 16 lowercase base32 characters, 80 random bits, made at ingest. URL-, folder- and
 * SQL-identifier-safe, which staging table names and cache folders rely on. The one rule every
 * parser of a dataset id (URLs, cursors, global ids, the cache sweep) checks against.
 */
export const DATASET_ID_PATTERN = '[a-z2-7]{16}';
const DATASET_ID = new RegExp(`^${DATASET_ID_PATTERN}$`);
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export function newDatasetId(): string {
  return newId();
}

/** The same form for other objects that need a random, URL-safe id (evaluations). */
export function newId(): string {
  return Array.from(randomBytes(16), (b) => ALPHABET[b & 31]).join('');
}

/** Anything else names no dataset: it is answered as unknown without a lookup. */
export function isDatasetId(id: string): boolean {
  return DATASET_ID.test(id);
}

/** Whether `id` has the form newId() makes. */
export const isId = isDatasetId;
