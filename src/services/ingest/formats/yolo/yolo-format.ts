import { A, buffersOf, type ColumnBuffers, type Columns } from '../../../records/columns.js';
import type { RecordEvent } from '../../../records/events.js';
import type { CategoryRecord } from '../../../records/types.js';
import { BadInputError, DataVisorError } from '../../../errors.js';
import type { InputLocation, ObjectStore, StorageService } from '../../../storage/index.js';
import { describeInput } from '../probe.js';
import type { FormatReader, ReadOptions, ReaderSource, ReadStep, ReadSummary } from '../reader.js';
import { looksLikeDatasetYaml } from './dataset-config.js';
import { readHeaderStore, readLabelStore } from './file-reads.js';
import { listedImageChunks, listedImages, walkBucket, walkLocal, type ImageEntry, type WalkHooks } from './file-tree.js';
import { commonDir } from '../../../storage/index.js';
import { resolveLayout, type SplitEntry, type YoloPlan } from './layout.js';
import { LocalReads, type ReadBatch } from './local-reads.js';
import { RecordBuilder, relativeKey, type RecordBatch, type RecordSettings } from './records.js';

/** Images per step: a few hundred rows per batch, as the COCO parser sends. */
const BATCH_IMAGES = 256;
/**
 * Local files: read threads (at most; DATAVISOR_PARSE_THREADS caps them), and batches given to each
 * ahead of the one being appended. A batch takes a thread ~3 ms, and the appends keep the main
 * thread from sending more for up to ~0.1 s (DuckDB's appender): with 3 ahead the threads idled a
 * quarter of the read; with 24 the train2017-scale ingest took ~0.3 s less (4 alternating pairs).
 */
const MAX_READ_THREADS = 2;
const BATCHES_AHEAD_PER_THREAD = 24;
/** Bucket objects: images whose header and label are being fetched at once (each a ranged or small GET). */
const IN_FLIGHT_BUCKET = 32;

interface YoloSource extends ReaderSource {
  plan: YoloPlan;
}

/**
 * An Ultralytics YOLO dataset: its YAML (`data.yaml`, any name) or the folder holding it, or a
 * darknet / labelImg folder with `classes.txt`. The YAML's splits become the samples' `split` in one
 * dataset; boxes and YOLO-seg polygons are read from the label files in pixels (docs/formats.md).
 */
export const yoloFormat: FormatReader = {
  name: 'yolo',

  detect(probe) {
    // A bucket object is not read before its reader runs: its name decides.
    if (probe.kind === 'file') return /\.ya?ml$/i.test(probe.name) && (probe.head === null || looksLikeDatasetYaml(probe.head));
    // A VOC folder (Annotations/) is never ours, even with a stray YAML in it.
    if (probe.entries.includes('Annotations/')) return false;
    if (probe.entries.some((e) => /\.ya?ml$/i.test(e))) return true;
    return probe.entries.includes('classes.txt') && probe.entries.some((e) => e === 'images/' || e === 'labels/' || /\.(jpe?g|png|bmp|webp|tiff?)$/i.test(e));
  },

  async resolve(request, storage) {
    // An input that is recognisably another format is named as such (a YAML or folder that merely
    // lacks what YOLO needs gets the YAML reader's own precise message instead).
    const looks = yoloFormat.detect(request.probe) ? null : describeInput(request.probe);
    if (looks !== null && !looks.includes('YOLO')) throw new BadInputError(`annotation_path ${JSON.stringify(request.probe.name)} is not a YOLO dataset: it looks like ${looks}`);
    const layout = await resolveLayout(request.annotationPath, request.imageDir, storage);
    const source: YoloSource = {
      storage, annotation: layout.config, images: layout.images, bytesTotal: null, defaultName: layout.defaultName, plan: layout.plan,
      // Images are numbered in the order they are sent, each batch's annotations follow its images,
      // and class ids are the categories' ids (unknown ones get a category of their own id).
      rowsInOrder: true,
    };
    return source;
  },

  read: readYolo,
};

interface Fetched {
  entry: ImageEntry;
  width: number;
  height: number;
  /** Why the header could not be read (width and height are then NaN). */
  reason: string | null;
  label: string | null;
}

type Reuse = { images: ColumnBuffers; annotations: ColumnBuffers };

async function* readYolo(source: ReaderSource, options: ReadOptions): AsyncGenerator<ReadStep, ReadSummary> {
  const { plan, images, storage } = source as YoloSource;
  const { tally } = plan;
  const rootKey = images.key;
  // Warnings name label files relative to the dataset's folder (the YAML's, or the image folder
  // when that is above it): `labels/train/x.txt`, not the server's own paths.
  const configKey = source.annotation.key;
  const labelBase = commonDir(configKey.slice(0, Math.max(0, configKey.lastIndexOf('/'))) || (configKey.startsWith('/') ? '/' : ''), rootKey);
  const store = images.store;
  const labelDirs = new Map<string, Promise<boolean>>();
  const labelDirUsable = (dir: string) => {
    let p = labelDirs.get(dir);
    if (!p) labelDirs.set(dir, (p = usableFolder(storage, images, dir)));
    return p;
  };
  const hooks: WalkHooks = {
    labelDirUsable,
    orphanLabel: (key) => tally.add('label_files_without_image', relativeKey(labelBase, key)),
    notLabels: plan.notLabels,
  };
  const settings: RecordSettings = { classIds: [...plan.names.keys()], kptShape: plan.kptShape, keepShapes: options.keepShapes, rootKey, labelBase };

  let bytesRead = 0;
  const categories: CategoryRecord[] = [...plan.names].map(([id, name]) => ({ id, name, supercategory: null, extra: null }));
  yield { bytesRead, events: [{ kind: 'section', name: 'categories' }, { kind: 'categories', categories }, { kind: 'section', name: 'images' }] };

  const unknownClassIds = new Set<number>();
  let imagesSent = 0;
  let annotationsSeen = 0;
  /**
   * A batch as the ingest gets it: its annotations numbered after those of the batches before,
   * from 1 (as COCO files and pycocotools' loadRes: its evaluation never counts a match to the
   * object of id 0 as a true positive); its warnings tallied in order.
   */
  const stepOf = (b: RecordBatch): ReadStep => {
    const a = b.annotations;
    for (let i = 0, o = A.id; i < a.count; i++, o += a.stride) a.nums[o] = a.nums[o]! + annotationsSeen + 1;
    annotationsSeen += a.count;
    tally.merge(b.tally);
    for (const id of b.unknownClassIds) unknownClassIds.add(id);
    return { bytesRead, events: stepEvents(b.images, a) };
  };
  if (plan.local) {
    // Local files: read threads read them and build the rows; this thread walks and appends.
    const threads = Math.max(1, Math.min(options.threads, MAX_READ_THREADS));
    const reads = new LocalReads(settings, threads);
    try {
      const ahead: Promise<ReadBatch>[] = [];
      let giveBack: Reuse[] = [];
      let batch: ImageEntry[] = [];
      let batchSplit: string | null = null;
      const send = async () => {
        // A walk's images have their label from the label folder's listing: no check to wait for.
        const labels = batch.every((e) => e.labelListed) ? batch.map((e) => e.label) : await Promise.all(batch.map((e) => labelToRead(e, labelDirUsable)));
        const p = reads.read(batchSplit, imagesSent, batch.map((e) => e.key), labels, giveBack);
        imagesSent += batch.length;
        // Awaited in turn below; until then a failure must not count as unhandled.
        p.catch(() => undefined);
        ahead.push(p);
        giveBack = [];
        batch = [];
      };
      // Each batch is a step; once the ingest asks for the next step, its arrays go back to a thread.
      const next = async function* (): AsyncGenerator<ReadStep, void> {
        const r = await ahead.shift()!;
        bytesRead += r.bytes;
        yield stepOf(r);
        giveBack.push({ images: buffersOf(r.images), annotations: buffersOf(r.annotations) });
      };
      for (const split of plan.splits) {
        for (const entry of split.entries) {
          const chunks = entry.kind === 'list' ? listedImageChunks(entry.images) : walkLocal(entry.key, hooks);
          for await (const chunk of chunks) {
            for (const e of chunk) {
              if (batch.length > 0 && batchSplit !== split.name) await send();
              batchSplit = split.name;
              batch.push(e);
              if (batch.length < BATCH_IMAGES) continue;
              await send();
              if (ahead.length > BATCHES_AHEAD_PER_THREAD * threads) yield* next();
            }
          }
        }
      }
      if (batch.length > 0) await send();
      while (ahead.length > 0) yield* next();
    } finally {
      await reads.close();
    }
  } else {
    // Buckets: fetched here, a few dozen objects at a time, and built into rows here.
    const builder = new RecordBuilder(settings);
    let reuse: Reuse | undefined;
    const fetchBucket = async (entry: ImageEntry): Promise<Fetched> => {
      const labelKey = await labelToRead(entry, labelDirUsable);
      const [header, label] = await Promise.all([readHeaderStore(store, entry.key), labelKey === null ? null : readLabelStore(store, labelKey)]);
      const size = header.size;
      bytesRead += header.bytes + (label?.length ?? 0);
      return { entry, width: size ? size.width : NaN, height: size ? size.height : NaN, reason: size ? null : (header as { reason: string }).reason, label };
    };
    for (const split of plan.splits) {
      for (const entry of split.entries) {
        for await (const f of mapOrdered(entriesOf(entry, store), IN_FLIGHT_BUCKET, fetchBucket)) {
          if (builder.pending === 0) builder.begin(imagesSent);
          builder.add(f.entry.key, split.name, f.width, f.height, f.reason, f.label === null ? null : f.entry.label, f.label);
          imagesSent++;
          if (builder.pending < BATCH_IMAGES) continue;
          const b = builder.take(reuse);
          yield stepOf(b);
          reuse = { images: buffersOf(b.images), annotations: buffersOf(b.annotations) };
        }
      }
    }
    if (builder.pending > 0) yield stepOf(builder.take(reuse));
  }
  const unknown = [...unknownClassIds].sort((x, y) => x - y);
  if (unknown.length > 0) {
    const extra = unknown.map((id) => ({ id, name: `class_${id}`, supercategory: null, extra: { not_in_names: true } }));
    yield { bytesRead, events: [{ kind: 'categories', categories: extra }] };
  }
  return { bytesRead, parts: 1, warnings: tally.toWarnings() };
}

function stepEvents(imgs: Columns, anns: Columns): RecordEvent[] {
  const events: RecordEvent[] = [];
  if (imgs.count > 0) events.push({ kind: 'images', columns: imgs });
  if (anns.count > 0) events.push({ kind: 'annotations', columns: anns });
  return events;
}

/** A bucket split's images, one at a time (local ones come from walkLocal, a few hundred at a time). */
function entriesOf(entry: SplitEntry, store: ObjectStore): AsyncIterable<ImageEntry> | Iterable<ImageEntry> {
  return entry.kind === 'list' ? listedImages(entry.images) : walkBucket(store.list(entry.key), entry.key);
}

/** The label file to try for an image: null when there is none, or its folder is missing. */
async function labelToRead(entry: ImageEntry, labelDirUsable: (dir: string) => Promise<boolean>): Promise<string | null> {
  if (entry.label === null) return null;
  if (!entry.labelListed && !(await labelDirUsable(entry.label.slice(0, entry.label.lastIndexOf('/'))))) return null;
  return entry.label;
}

/** A label folder: inside the data roots (else FORBIDDEN, which fails the ingest) and existing. */
async function usableFolder(storage: StorageService, images: InputLocation, dir: string): Promise<boolean> {
  const url = images.location.kind === 'local' ? dir || '/' : `${images.location.kind}://${images.location.bucket}${dir === '' ? '' : `/${dir}`}`;
  try {
    await storage.resolveInput('label folder', url, 'directory');
    return true;
  } catch (e) {
    if (e instanceof DataVisorError && (e.code === 'FILE_NOT_FOUND' || e.code === 'BAD_USER_INPUT')) return false;
    throw e;
  }
}

/**
 * `fn` over `source` with up to `limit` calls running, results in the source's order: the reads of
 * many small files overlap while records still come out in a fixed order.
 */
async function* mapOrdered<T, R>(source: AsyncIterable<T> | Iterable<T>, limit: number, fn: (t: T) => Promise<R>): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  try {
    for await (const item of source) {
      const p = fn(item);
      // Awaited in turn below; until then a rejection must not count as unhandled.
      p.catch(() => undefined);
      queue.push(p);
      if (queue.length >= limit) yield await queue.shift()!;
    }
    while (queue.length > 0) yield await queue.shift()!;
  } finally {
    // Left early: the reads under way finish on their own (each closes its file).
    await Promise.allSettled(queue);
  }
}
