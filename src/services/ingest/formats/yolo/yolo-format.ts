import { IMG_TEXT, I, buffersOf, newAnnotationColumns, newImageColumns, type ColumnBuffers, type ColumnsBuilder } from '../../../records/columns.js';
import type { RecordEvent } from '../../../records/events.js';
import type { CategoryRecord } from '../../../records/types.js';
import { DataVisorError } from '../../../errors.js';
import type { InputLocation, ObjectStore, StorageService } from '../../../storage/index.js';
import type { FormatReader, ReadOptions, ReaderSource, ReadStep, ReadSummary } from '../reader.js';
import { looksLikeDatasetYaml } from './dataset-config.js';
import { readHeaderStore, readLabelStore } from './file-reads.js';
import { listedImages, walkBucket, walkLocal, type ImageEntry, type WalkHooks } from './file-tree.js';
import { readLabelText, type LabelContext } from './label-lines.js';
import { commonDir, resolveLayout, type SplitEntry, type YoloPlan } from './layout.js';
import { LocalReads, type LocalReadResult } from './local-reads.js';

/** Images per step: a few hundred rows per batch, as the COCO parser sends. */
const BATCH_IMAGES = 256;
/** Local files: batches of images the read thread is given ahead of the one being recorded. */
const LOCAL_BATCHES_AHEAD = 4;
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
    if (probe.kind === 'file') return /\.ya?ml$/i.test(probe.name) && looksLikeDatasetYaml(probe.head);
    // A VOC folder (Annotations/) is never ours, even with a stray YAML in it.
    if (probe.entries.includes('Annotations/')) return false;
    if (probe.entries.some((e) => /\.ya?ml$/i.test(e))) return true;
    return probe.entries.includes('classes.txt') && probe.entries.some((e) => e === 'images/' || e === 'labels/' || /\.(jpe?g|png|bmp|webp|tiff?)$/i.test(e));
  },

  async resolve(request, storage) {
    const layout = await resolveLayout(request.annotationPath, request.imageDir, storage);
    const source: YoloSource = {
      storage, annotation: layout.config, images: layout.images, bytesTotal: null, defaultName: layout.defaultName, plan: layout.plan,
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
  bytes: number;
  label: string | null;
}

async function* readYolo(source: ReaderSource, options: ReadOptions): AsyncGenerator<ReadStep, ReadSummary> {
  const { plan, images, storage } = source as YoloSource;
  const { tally } = plan;
  const rootKey = images.key;
  const relOf = (key: string) => relativeKey(rootKey, key);
  // Warnings name label files relative to the dataset's folder (the YAML's, or the image folder
  // when that is above it): `labels/train/x.txt`, not the server's own paths.
  const configKey = source.annotation.key;
  const labelBase = commonDir(configKey.slice(0, Math.max(0, configKey.lastIndexOf('/'))) || (configKey.startsWith('/') ? '/' : ''), rootKey);
  const shown = (key: string) => relativeKey(labelBase, key);
  const store = images.store;
  const labelDirs = new Map<string, Promise<boolean>>();
  const labelDirUsable = (dir: string) => {
    let p = labelDirs.get(dir);
    if (!p) labelDirs.set(dir, (p = usableFolder(storage, images, dir)));
    return p;
  };
  const hooks: WalkHooks = {
    labelDirUsable,
    orphanLabel: (key) => tally.add('label_files_without_image', shown(key)),
    notLabels: plan.notLabels,
  };
  const ctx: LabelContext = {
    classIds: new Set(plan.names.keys()), kptShape: plan.kptShape, keepShapes: options.keepShapes, tally, unknownClassIds: new Set(),
  };
  const fetchBucket = async (entry: ImageEntry): Promise<Fetched> => {
    const [header, label] = await Promise.all([
      readHeaderStore(store, entry.key),
      (await labelToRead(entry, labelDirUsable)) === null ? null : readLabelStore(store, entry.label!),
    ]);
    const size = header.size;
    return {
      entry, width: size ? size.width : NaN, height: size ? size.height : NaN, reason: size ? null : (header as { reason: string }).reason,
      bytes: header.bytes + (label?.length ?? 0), label,
    };
  };
  let bytesRead = 0;
  const categories: CategoryRecord[] = [...plan.names].map(([id, name]) => ({ id, name, supercategory: null, extra: null }));
  yield { bytesRead, events: [{ kind: 'section', name: 'categories' }, { kind: 'categories', categories }, { kind: 'section', name: 'images' }] };

  let nextImageId = 0;
  let nextAnnotationId = 0;
  let imgReuse: ColumnBuffers | undefined;
  let annReuse: ColumnBuffers | undefined;
  let imgs: ColumnsBuilder = newImageColumns();
  let anns: ColumnsBuilder = newAnnotationColumns();
  // The read thread of local files; stopped however the read ends (done, failed, or left early).
  const local = plan.local ? new LocalReads() : null;
  try {
    for (const split of plan.splits) {
      for (const entry of split.entries) {
        const entries = entriesOf(entry, plan, store, hooks);
        const fetched = local ? readLocal(entries, local, labelDirUsable) : mapOrdered(entries, IN_FLIGHT_BUCKET, fetchBucket);
        for await (const f of fetched) {
          const imageId = nextImageId++;
          const rel = relOf(f.entry.key);
          const sized = f.reason === null;
          bytesRead += f.bytes;
          if (!sized) tally.add('image_headers_unreadable', `${rel} (${f.reason})`);
          const o = imgs.row();
          const n = imgs.nums;
          n[o + I.id] = imageId;
          n[o + I.width] = f.width;
          n[o + I.height] = f.height;
          n[o + I.license] = NaN;
          imgs.text(IMG_TEXT.fileName, rel);
          imgs.text(IMG_TEXT.cocoUrl, null);
          imgs.text(IMG_TEXT.flickrUrl, null);
          imgs.text(IMG_TEXT.dateCaptured, null);
          imgs.text(IMG_TEXT.extra, null);
          imgs.text(IMG_TEXT.split, split.name);
          if (f.label !== null) {
            const text = f.label.charCodeAt(0) === 0xfeff ? f.label.slice(1) : f.label;
            nextAnnotationId += readLabelText(text, shown(f.entry.label!), imageId, sized ? f.width : null, sized ? f.height : null, nextAnnotationId, anns, ctx);
          }
          if (imgs.count >= BATCH_IMAGES) {
            const built = [imgs.build(), anns.build()] as const;
            yield { bytesRead, events: stepEvents(built[0], built[1]) };
            // The consumer is done with a step once it asks for the next: its arrays are refilled.
            imgReuse = buffersOf(built[0]);
            annReuse = buffersOf(built[1]);
            imgs = newImageColumns(imgReuse);
            anns = newAnnotationColumns(annReuse);
          }
        }
      }
    }
  } finally {
    await local?.close();
  }
  const events = stepEvents(imgs.build(), anns.build());
  if (ctx.unknownClassIds.size > 0) {
    const extra = [...ctx.unknownClassIds].sort((a, b) => a - b).map((id) => ({ id, name: `class_${id}`, supercategory: null, extra: { not_in_names: true } }));
    events.push({ kind: 'categories', categories: extra });
  }
  if (events.length > 0) yield { bytesRead, events };
  return { bytesRead, parts: 1, warnings: tally.toWarnings() };
}

/** `key` relative to the folder `base` (a path or a bucket key); as it is when outside it. */
function relativeKey(base: string, key: string): string {
  if (base === '') return key;
  if (base === '/') return key.slice(1);
  return key.startsWith(`${base}/`) ? key.slice(base.length + 1) : key;
}

function stepEvents(imgs: ReturnType<ColumnsBuilder['build']>, anns: ReturnType<ColumnsBuilder['build']>): RecordEvent[] {
  const events: RecordEvent[] = [];
  if (imgs.count > 0) events.push({ kind: 'images', columns: imgs });
  if (anns.count > 0) events.push({ kind: 'annotations', columns: anns });
  return events;
}

function entriesOf(entry: SplitEntry, plan: YoloPlan, store: ObjectStore, hooks: WalkHooks): AsyncIterable<ImageEntry> | Iterable<ImageEntry> {
  if (entry.kind === 'list') return listedImages(entry.images);
  return plan.local ? walkLocal(entry.key, hooks) : walkBucket(store.list(entry.key), entry.key);
}

/** The label file to try for an image: null when there is none, or its folder is missing. */
async function labelToRead(entry: ImageEntry, labelDirUsable: (dir: string) => Promise<boolean>): Promise<string | null> {
  if (entry.label === null) return null;
  if (!entry.labelListed && !(await labelDirUsable(entry.label.slice(0, entry.label.lastIndexOf('/'))))) return null;
  return entry.label;
}

/**
 * Local images, read by the read thread in batches, a few batches ahead of the one being
 * recorded: the thread reads while the main thread builds records and DuckDB appends them.
 */
async function* readLocal(
  entries: AsyncIterable<ImageEntry> | Iterable<ImageEntry>, reads: LocalReads, labelDirUsable: (dir: string) => Promise<boolean>,
): AsyncGenerator<Fetched> {
  const ahead: { batch: ImageEntry[]; result: Promise<LocalReadResult> }[] = [];
  let batch: ImageEntry[] = [];
  const send = async () => {
    const labels = await Promise.all(batch.map((e) => labelToRead(e, labelDirUsable)));
    const result = reads.read(batch.map((e) => e.key), labels);
    // Awaited in turn below; until then a failure must not count as unhandled.
    result.catch(() => undefined);
    ahead.push({ batch, result });
    batch = [];
  };
  function* unpack(b: ImageEntry[], r: LocalReadResult): Generator<Fetched> {
    for (let i = 0; i < b.length; i++) {
      const label = r.hasLabel[i] === 1 ? r.labels.slice(i === 0 ? 0 : r.labelEnds[i - 1], r.labelEnds[i]) : null;
      yield { entry: b[i]!, width: r.sizes[2 * i]!, height: r.sizes[2 * i + 1]!, reason: r.reasons[i]!, bytes: i === 0 ? r.bytes : 0, label };
    }
  }
  try {
    for await (const e of entries) {
      batch.push(e);
      if (batch.length < BATCH_IMAGES) continue;
      await send();
      if (ahead.length > LOCAL_BATCHES_AHEAD) {
        const next = ahead.shift()!;
        yield* unpack(next.batch, await next.result);
      }
    }
    if (batch.length > 0) await send();
    while (ahead.length > 0) {
      const next = ahead.shift()!;
      yield* unpack(next.batch, await next.result);
    }
  } finally {
    await Promise.allSettled(ahead.map((a) => a.result));
  }
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
