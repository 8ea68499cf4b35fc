import { IMG_TEXT, I, buffersOf, newAnnotationColumns, newImageColumns, type ColumnBuffers, type ColumnsBuilder } from '../../../records/columns.js';
import type { RecordEvent } from '../../../records/events.js';
import type { CategoryRecord } from '../../../records/types.js';
import { DataVisorError } from '../../../errors.js';
import type { InputLocation, ObjectStore, StorageService } from '../../../storage/index.js';
import type { FormatReader, ReadOptions, ReaderSource, ReadStep, ReadSummary } from '../reader.js';
import { looksLikeDatasetYaml } from './dataset-config.js';
import { readHeaderLocal, readHeaderStore, readLabelLocal, readLabelStore, type HeaderResult } from './file-reads.js';
import { listedImages, walkBucket, walkLocal, type ImageEntry, type WalkHooks } from './file-tree.js';
import { readLabelText, type LabelContext } from './label-lines.js';
import { commonDir, resolveLayout, type SplitEntry, type YoloPlan } from './layout.js';

/** Images per step: a few hundred rows per batch, as the COCO parser sends. */
const BATCH_IMAGES = 256;
/** Images whose header and label are being read at once (each read is one small file or ranged GET). */
const IN_FLIGHT_LOCAL = 32;
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
  header: HeaderResult;
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
  const fetch = async (entry: ImageEntry): Promise<Fetched> => {
    const [header, label] = await Promise.all([
      plan.local ? readHeaderLocal(entry.key) : readHeaderStore(store, entry.key),
      readLabel(entry, plan.local, store, labelDirUsable),
    ]);
    return { entry, header, label };
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
  for (const split of plan.splits) {
    for (const entry of split.entries) {
      const inFlight = plan.local ? IN_FLIGHT_LOCAL : IN_FLIGHT_BUCKET;
      for await (const f of mapOrdered(entriesOf(entry, plan, store, hooks), inFlight, fetch)) {
        const imageId = nextImageId++;
        const rel = relOf(f.entry.key);
        const size = f.header.size;
        bytesRead += f.header.bytes;
        if (!size) tally.add('image_headers_unreadable', `${rel} (${f.header.size === null ? f.header.reason : ''})`);
        const o = imgs.row();
        const n = imgs.nums;
        n[o + I.id] = imageId;
        n[o + I.width] = size ? size.width : NaN;
        n[o + I.height] = size ? size.height : NaN;
        n[o + I.license] = NaN;
        imgs.text(IMG_TEXT.fileName, rel);
        imgs.text(IMG_TEXT.cocoUrl, null);
        imgs.text(IMG_TEXT.flickrUrl, null);
        imgs.text(IMG_TEXT.dateCaptured, null);
        imgs.text(IMG_TEXT.extra, null);
        imgs.text(IMG_TEXT.split, split.name);
        if (f.label !== null) {
          bytesRead += f.label.length;
          const text = f.label.charCodeAt(0) === 0xfeff ? f.label.slice(1) : f.label;
          nextAnnotationId += readLabelText(text, shown(f.entry.label!), imageId, size?.width ?? null, size?.height ?? null, nextAnnotationId, anns, ctx);
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

async function readLabel(entry: ImageEntry, local: boolean, store: ObjectStore, labelDirUsable: (dir: string) => Promise<boolean>): Promise<string | null> {
  if (entry.label === null) return null;
  if (!entry.labelListed && !(await labelDirUsable(entry.label.slice(0, entry.label.lastIndexOf('/'))))) return null;
  return local ? readLabelLocal(entry.label) : readLabelStore(store, entry.label);
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
