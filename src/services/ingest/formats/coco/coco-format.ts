import type { RecordEvent, RecordSection } from '../../../records/events.js';
import { baseName } from '../../../storage/location.js';
import { BadInputError } from '../../../errors.js';
import { describeInput } from '../probe.js';
import type { FormatReader, ReadOptions, ReaderSource, ReadStep, ReadSummary } from '../reader.js';
import { parseCoco, type ParseInput } from './parse-coco.js';
import type { CocoSection } from './wire.js';

/** Forwarded to the parse thread per message (bucket streams are regrouped to it); it tokenizes in 16 KiB slices. */
const READ_CHUNK = 256 * 1024;

const RECORD_SECTIONS: ReadonlySet<CocoSection> = new Set<RecordSection>(['images', 'annotations', 'categories']);

/** A COCO annotation file (`instances_*.json`) and the folder its `file_name`s are relative to. */
export const cocoFormat: FormatReader = {
  name: 'coco',

  // A JSON object at the top. A JSON array is a results file (predictions), not a dataset.
  detect: (probe) => probe.kind === 'file' && (probe.head === null ? /\.json$/i.test(probe.name) : /^\s*\{/.test(probe.head)),

  async resolve(request, storage) {
    const looks = cocoFormat.detect(request.probe) ? null : describeInput(request.probe);
    if (looks !== null) throw new BadInputError(`annotation_path ${JSON.stringify(request.probe.name)} is not a COCO annotation file: it looks like ${looks}`);
    if (request.imageDir === null) throw new BadInputError('image_dir is required for a COCO file: the folder its images\' file_name values are relative to');
    if (request.input.isDirectory) throw new BadInputError(`annotation_path ${JSON.stringify(request.annotationPath)} is not a file`);
    const annotation = request.input;
    const images = await storage.resolveInput('image_dir', request.imageDir, 'directory');
    return { storage, annotation, images, bytesTotal: annotation.size, defaultName: baseName(annotation.location).replace(/\.json$/i, '') };
  },

  read: readCoco,
};

async function* readCoco(source: ReaderSource, options: ReadOptions): AsyncGenerator<ReadStep, ReadSummary> {
  const { storage, annotation } = source;
  // Parsed as it is read or downloaded, never held whole.
  const input: ParseInput = { size: annotation.size, open: (range, spare) => storage.openInput(annotation, READ_CHUNK, range, spare) };
  const parse = parseCoco(input, { keepShapes: options.keepShapes, threads: options.threads, minPartBytes: options.minPartBytes });
  try {
    let step = await parse.next();
    while (!step.done) {
      const events: RecordEvent[] = [];
      for (const ev of step.value.events) {
        if (ev.kind !== 'section') events.push(ev);
        else if (RECORD_SECTIONS.has(ev.name)) events.push({ kind: 'section', name: ev.name as RecordSection });
      }
      yield { bytesRead: step.value.bytesRead, events };
      step = await parse.next();
    }
    const { bytesRead, parts, nonStandardNumbers } = step.value;
    const warnings = nonStandardNumbers > 0
      ? [{ code: 'non_standard_numbers', count: nonStandardNumbers, message: 'NaN or Infinity values (written by Python\'s json.dump) were read as null', examples: [] }]
      : [];
    return { bytesRead, parts, warnings };
  } finally {
    // Terminates the parse threads and closes the file when the read is left early.
    await parse.return(undefined as never);
  }
}
