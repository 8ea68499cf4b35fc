import { BadInputError } from '../../errors.js';
import { cocoFormat } from './coco/coco-format.js';
import { describeInput } from './probe.js';
import type { FormatReader, InputProbe } from './reader.js';
import { vocFormat } from './voc/voc-format.js';
import { yoloFormat } from './yolo/yolo-format.js';

/** Every format ingestion reads, by the name a request gives. */
const READERS: readonly FormatReader[] = [cocoFormat, vocFormat, yoloFormat];

export const FORMAT_NAMES: readonly string[] = READERS.map((r) => r.name);

/** The format a request names when it names none: the registry tells it from the input. */
export const AUTO_FORMAT = 'auto';
export const DEFAULT_FORMAT = AUTO_FORMAT;
/** What a request may name. */
export const FORMAT_CHOICES: readonly string[] = [AUTO_FORMAT, ...FORMAT_NAMES];

/** The reader of a format by its name. */
export function readerNamed(format: string): FormatReader {
  const reader = READERS.find((r) => r.name === format);
  if (!reader) throw new BadInputError(`format ${JSON.stringify(format)} is not supported; the supported formats are ${FORMAT_CHOICES.map((f) => `"${f}"`).join(', ')}`);
  return reader;
}

/**
 * The reader of an input: the format named (its reader explains an input it cannot read), or with
 * `auto` the one that recognises it; an input none recognises but that is recognisably something
 * else is refused with what it looks like and what to do.
 */
export function readerFor(format: string, probe: InputProbe, label = 'annotation_path'): FormatReader {
  if (format !== AUTO_FORMAT) return readerNamed(format);
  const reader = READERS.find((r) => r.detect(probe));
  if (reader) return reader;
  const looks = describeInput(probe);
  if (looks !== null) throw new BadInputError(`${label} ${JSON.stringify(probe.name)} is not in a format DataVisor reads (${FORMAT_NAMES.join(', ')}): it looks like ${looks}`);
  // Nothing recognisable (empty, truncated, garbage): COCO's parser says where it breaks.
  return cocoFormat;
}
