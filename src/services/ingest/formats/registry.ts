import { BadInputError } from '../../errors.js';
import { cocoFormat } from './coco/coco-format.js';
import type { FormatReader } from './reader.js';
import { vocFormat } from './voc/voc-format.js';

/** Every format ingestion reads, by the name a request gives. */
const READERS: readonly FormatReader[] = [cocoFormat, vocFormat];

export const FORMAT_NAMES: readonly string[] = READERS.map((r) => r.name);

/** The format a request names when it names none. */
export const DEFAULT_FORMAT = 'coco';

export function readerFor(format: string): FormatReader {
  const reader = READERS.find((r) => r.name === format);
  if (!reader) throw new BadInputError(`format ${JSON.stringify(format)} is not supported; the supported formats are ${FORMAT_NAMES.map((f) => `"${f}"`).join(', ')}`);
  return reader;
}
