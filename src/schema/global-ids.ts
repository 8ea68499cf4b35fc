import { BadInputError } from '../services/errors.js';
import { parseSampleId } from '../services/datasets/samples.js';
import { isDatasetId } from '../services/ids.js';

/**
 * Global ids as Relay makes them: base64 of `Dataset:<datasetId>` or `Sample:<datasetId>:<imageId>`.
 * Anything that does not decode to one of these is a BAD_USER_INPUT error, never a 500.
 */
export const NODE_TYPES = ['Dataset', 'Sample'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function encodeGlobalId(typename: string, localId: string): string {
  return Buffer.from(`${typename}:${localId}`, 'utf8').toString('base64');
}

export function decodeGlobalId(globalId: string): { typename: NodeType; id: string } {
  const bad = (why: string) => new BadInputError(`${JSON.stringify(globalId)} is not a valid id: ${why}`);
  if (!BASE64.test(globalId) || globalId.length % 4 !== 0) throw bad('ids are base64 strings as the API hands them out');
  const text = Buffer.from(globalId, 'base64').toString('utf8');
  const sep = text.indexOf(':');
  const typename = text.slice(0, sep);
  const id = text.slice(sep + 1);
  if (sep <= 0 || id === '') throw bad('it does not name a type and a key');
  if (!(NODE_TYPES as readonly string[]).includes(typename)) throw bad(`no object of type ${JSON.stringify(typename)} has a global id here`);
  return { typename: typename as NodeType, id };
}

/** A dataset as arguments name it: its REST id (`Dataset.datasetId`) or its global id (`Dataset.id`). */
export function parseDatasetRef(ref: string): string {
  if (isDatasetId(ref)) return ref;
  const { typename, id } = decodeGlobalId(ref);
  if (typename !== 'Dataset') throw new BadInputError(`${JSON.stringify(ref)} is the id of a ${typename}, not of a Dataset`);
  return id;
}

/** The local part of a Sample's global id: `<datasetId>:<imageId>`. */
export function sampleLocalId(datasetId: string, sampleId: number): string {
  return `${datasetId}:${sampleId}`;
}

export function parseSampleLocalId(local: string): { datasetId: string; sampleId: number } {
  const sep = local.lastIndexOf(':');
  const datasetId = local.slice(0, sep);
  const sampleId = parseSampleId(local.slice(sep + 1));
  if (sep <= 0 || !isDatasetId(datasetId) || sampleId === null) {
    throw new BadInputError(`${JSON.stringify(local)} is not a sample key (expected <datasetId>:<imageId>)`);
  }
  return { datasetId, sampleId };
}
