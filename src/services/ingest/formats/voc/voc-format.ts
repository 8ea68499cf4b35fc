import path from 'node:path';
import { isDataVisorError } from '../../../errors.js';
import { buffersOf, newAnnotationColumns, newImageColumns, pushAnnotation, pushImage, type Columns } from '../../../records/columns.js';
import type { RecordEvent } from '../../../records/events.js';
import type { CategoryRecord, Warning } from '../../../records/types.js';
import type { ObjectStore, StorageService } from '../../../storage/index.js';
import { baseName } from '../../../storage/location.js';
import type { FormatReader, ReaderSource, ReadStep, ReadSummary } from '../reader.js';
import { readImageSize } from './image-size.js';
import { ImageIndex, isImageName, listXmlFiles, resolveLayout, SplitIndex, stemOf, type VocLayout } from './layout.js';
import { attribute, boxFault, dimension, numberOrText, toCocoBox } from './voc-records.js';
import { decodeXml, record, VocXmlError, VocXmlParser, type VocDocument, type VocObject } from './voc-xml.js';
import { XmlReads, type XmlRead } from './xml-reads.js';

/**
 * Files in flight at once: bucket reads (each ~1 KB, so memory is bounded by the count and
 * MAX_XML_BYTES) wait on the network, hence many; locally, files already read whose image header
 * is still being read (an XML without <size>).
 */
const XML_WINDOW_LOCAL = 16;
const XML_WINDOW_BUCKET = 32;
/** Local XML files go to the read thread in batches of this many, with this many batches ahead of the one in use. */
const XML_BATCH = 128;
const XML_BATCHES_AHEAD = 3;
/** A VOC file is a few KB (one with 1,000 objects ~300 KB); anything far larger is not one. */
const MAX_XML_BYTES = 8 * 1024 * 1024;
/** A step is emitted after this many images or annotations (the writer appends 2,048 rows a chunk). */
const STEP_IMAGES = 512;
const STEP_ANNOTATIONS = 2048;
const EXAMPLES = 5;

/** The object elements kept as flags (0/1 → false/true); `pose` stays text. */
const FLAGS = new Set(['difficult', 'truncated', 'occluded']);

export interface VocSource extends ReaderSource {
  voc: VocLayout;
  /** The image folder's listing, once `read` has taken it. */
  listing: ImageIndex | null;
}

/**
 * Pascal VOC (VOC2007/VOC2012 layout): `annotation_path` is the folder holding `Annotations/`,
 * `JPEGImages/` and `ImageSets/Main/`; `image_dir` is optional (default `JPEGImages/`).
 * docs/formats.md describes every decision (box conversion, ids, splits, warnings).
 */
export const vocFormat: FormatReader = {
  name: 'voc',

  // A folder with Annotations/ beside JPEGImages/ or ImageSets/ (as the devkit lays them out). A
  // single XML file is not claimed: one image's annotation is not a dataset, and a reader of it
  // would still need the folder around it. COCO JSON and YOLO YAML are files: never claimed.
  detect: (probe) =>
    probe.kind === 'directory' && probe.entries.includes('Annotations/') && (probe.entries.includes('JPEGImages/') || probe.entries.includes('ImageSets/')),

  async resolve(request, storage) {
    const voc = await resolveLayout(request.annotationPath, request.imageDir, storage);
    const source: VocSource = { storage, annotation: voc.root, images: voc.images, bytesTotal: null, defaultName: baseName(voc.root.location), voc, listing: null };
    // The ingest lists the image folder for its missing-file check after `read`, which has listed
    // it already: that listing is replayed rather than taken again (for 20,000 local files ~0.1-0.3 s;
    // from a bucket, a request per 1,000 names).
    source.images = { ...voc.images, store: replayingList(voc.images.store, voc.images.key, () => source.listing?.names ?? null) };
    return source;
  },

  read: (source) => readVoc(source as VocSource),
};

interface Parsed {
  name: string;
  bytes: number;
  doc: VocDocument | null;
  /** Why the file was skipped. */
  error: string | null;
  /** The image's index in the listing, or -1 when the folder has no such file. */
  imageIndex: number;
  fileName: string;
  width: number | null;
  height: number | null;
}

async function* readVoc(source: VocSource): AsyncGenerator<ReadStep, ReadSummary> {
  const { storage, voc } = source;
  if (!voc) throw new Error('readVoc needs the source its resolve() returned');
  const warnings = new WarningTally();
  const splits = await SplitIndex.read(storage, voc.root);
  const xml = await listXmlFiles(voc.annotations);
  const images = (source.listing = await ImageIndex.list(voc.images));
  const window = voc.annotations.location.kind === 'local' ? XML_WINDOW_LOCAL : XML_WINDOW_BUCKET;

  let bytesRead = splits.bytes;
  let imageId = 0;
  // From 1, as COCO files and pycocotools' loadRes number them: its evaluation never counts a
  // match to the object of id 0 as a true positive, so an id 0 could never be recalled.
  let annotationId = 1;
  /** Name → provisional id (first seen); renumbered in sorted name order at the end. */
  const categories = new Map<string, number>();
  /** Stems of XML files that were skipped: their images are not "without XML". */
  const skippedStems = new Set<string>();

  let img = newImageColumns();
  let ann = newAnnotationColumns();
  let pending: RecordEvent[] = [{ kind: 'section', name: 'images' }];
  /** The step so far; the builders start again in its arrays once the consumer asks for the next one. */
  const step = (): { value: ReadStep; reuse: () => void } => {
    const images = img.build();
    const annotations = ann.build();
    const events: RecordEvent[] = [...pending];
    pending = [];
    if (images.count > 0) events.push({ kind: 'images', columns: images });
    if (annotations.count > 0) events.push({ kind: 'annotations', columns: annotations });
    return {
      value: { bytesRead, events },
      reuse: () => {
        img = newImageColumns(buffersOf(images as Columns));
        ann = newAnnotationColumns(buffersOf(annotations));
      },
    };
  };

  /** A file read (and parsed, or skipped): where its image is and the image's size. */
  const complete = async ({ name, read }: { name: string; read: XmlRead }): Promise<Parsed> => {
    const parsed: Parsed = { name, bytes: read.bytes, doc: read.doc, error: read.error, imageIndex: -1, fileName: '', width: null, height: null };
    const doc = read.doc;
    if (doc === null) return parsed;
    // <filename> names the image in the image folder; <path> (usually a path on the annotator's
    // machine) stands in only when <filename> is absent or empty. A name the folder does not hold
    // is looked for without its extension, then as the XML file's own name (000005.xml →
    // 000005.*), as detectron2's and mmdetection's VOC loaders find images; failing that it is
    // kept (image_files_missing).
    const fromPath = doc.path ? (doc.path.split(/[\\/]/).at(-1) ?? '') : '';
    const named = doc.filename || fromPath || null;
    let index = named === null ? -1 : images.find(named);
    if (index < 0 && named !== null) index = images.findByStem(stemOf(named));
    if (index < 0) index = images.findByStem(stemOf(name));
    parsed.imageIndex = index;
    parsed.fileName = index >= 0 ? images.names[index]! : (named ?? `${stemOf(name)}.jpg`);
    parsed.width = dimension(doc.width);
    parsed.height = dimension(doc.height);
    if ((parsed.width === null || parsed.height === null) && index >= 0) {
      const size = await readImageSize(voc.images, parsed.fileName, storage.maxImageBytes);
      parsed.width = size?.width ?? parsed.width;
      parsed.height = size?.height ?? parsed.height;
    }
    return parsed;
  };
  const files = voc.annotations.location.kind === 'local' ? readLocalXml(storage, voc, xml.names, xml.links) : readBucketXml(voc, xml.names);

  for await (const r of ordered(files, window, complete)) {
    bytesRead += r.bytes;
    const xmlStem = stemOf(r.name);
    if (r.doc === null) {
      warnings.add('unparsable_xml', 'annotation files could not be read as VOC XML and were skipped', `${r.name}: ${r.error}`);
      skippedStems.add(xmlStem);
      splits.lookup(xmlStem);
      continue;
    }
    const doc = r.doc;
    if (r.imageIndex >= 0) images.used[r.imageIndex] = 1;
    const fileStem = stemOf(r.fileName);
    const split = splits.lookup(xmlStem) ?? (fileStem !== xmlStem ? splits.lookup(fileStem) : null);
    pushImage(img, {
      id: imageId, fileName: r.fileName, width: r.width, height: r.height, license: null, cocoUrl: null, flickrUrl: null,
      dateCaptured: null, split, extra: imageExtra(r.name, doc, r.fileName),
    });
    doc.objects.forEach((o, k) => {
      const name = o.name ?? '';
      const where = `${r.name}: object ${k + 1}`;
      if (name === '') warnings.add('empty_category_names', 'objects have an empty or missing <name>; they are kept, in the category named ""', where);
      let categoryId = categories.get(name);
      if (categoryId === undefined) categories.set(name, (categoryId = categories.size));
      const fault = boxFault(o.bndbox);
      if (fault === 'zero') {
        warnings.add('bbox_zero_size', 'boxes have xmax = xmin or ymax = ymin (usually a click without a drag); VOC coordinates are inclusive, so they are stored 1 px wide or high', `${where} (${name})`);
      } else if (fault === 'inverted') {
        warnings.add('bbox_inverted', 'boxes have xmax < xmin or ymax < ymin; they are kept as written, so their width or height is 0 or negative (and most are in degenerate_bbox too)', `${where} (${name})`);
      }
      const bbox = toCocoBox(o.bndbox);
      pushAnnotation(ann, {
        id: annotationId++, imageId, categoryId, bbox, area: bbox && bbox[2] > 0 && bbox[3] > 0 ? bbox[2] * bbox[3] : null,
        isCrowd: false, segmentationKind: 'none', polygonCount: 0, pointCount: 0, segmentation: null, numKeypoints: null,
        keypoints: null, score: null, extra: objectExtra(o),
      });
    });
    imageId++;
    if (img.count >= STEP_IMAGES || ann.count >= STEP_ANNOTATIONS) {
      const s = step();
      yield s.value;
      s.reuse();
    }
  }

  // Images no XML file named: samples without annotations, after the annotated ones, in name order.
  const unnamed: number[] = [];
  for (let i = 0; i < images.names.length; i++) if (!images.used[i] && isImageName(images.names[i]!)) unnamed.push(i);
  const sized = async (i: number) => ({ i, size: await readImageSize(voc.images, images.names[i]!, storage.maxImageBytes) });
  for await (const { i, size } of ordered(unnamed, window, sized)) {
    const fileName = images.names[i]!;
    const stem = stemOf(fileName);
    if (!skippedStems.has(stem)) {
      warnings.add('images_without_xml', 'images in the image folder have no annotation file naming them; they are kept, without annotations', fileName);
    }
    pushImage(img, {
      id: imageId++, fileName, width: size?.width ?? null, height: size?.height ?? null, license: null, cocoUrl: null, flickrUrl: null,
      dateCaptured: null, split: splits.lookup(stem), extra: null,
    });
    if (img.count >= STEP_IMAGES) {
      const s = step();
      yield s.value;
      s.reuse();
    }
  }

  // Category ids in sorted name order (UTF-16 code units: the same on every machine and locale).
  const names = [...categories.keys()];
  const sorted = [...names].sort();
  const finalId = new Map(sorted.map((n, i) => [n, i]));
  const records: CategoryRecord[] = sorted.map((name, id) => ({ id, name, supercategory: null, extra: null }));
  pending.push(
    { kind: 'section', name: 'annotations' },
    { kind: 'section', name: 'categories' },
    { kind: 'categories', categories: records },
    { kind: 'renumber_categories', from: names.map((n) => categories.get(n)!), to: names.map((n) => finalId.get(n)!) },
  );
  yield step().value;

  if (splits.conflicts.length > 0) {
    warnings.addAll('split_conflicts', 'images are listed in more than one of train.txt, val.txt and test.txt (or in trainval.txt and test.txt); each keeps the first, in that order', splits.conflicts);
  }
  const unknown = splits.unmatched();
  if (unknown.count > 0) {
    warnings.addCount('split_ids_unknown', 'ids in ImageSets/Main lists name no annotation file and no image', unknown.count, unknown.examples);
  }
  return { bytesRead, parts: 1, warnings: warnings.list() };
}

/**
 * Local XML files, read and parsed in the read thread a batch at a time, a few batches ahead of
 * the one being used; in name order. Symlinks are resolved here first: followed only within the
 * data roots. I/O failures other than a skip are the ingest's errors.
 */
async function* readLocalXml(storage: StorageService, voc: VocLayout, names: readonly string[], links: ReadonlySet<string>): AsyncGenerator<{ name: string; read: XmlRead }> {
  const dir = voc.annotations.key;
  const fileOf = async (name: string): Promise<string | { skip: string }> => {
    const file = path.join(dir, ...name.split('/'));
    if (!links.has(name)) return file;
    try {
      return (await storage.resolveInput('annotation file', file, 'file')).key;
    } catch (e) {
      if (isDataVisorError(e) && (e.code === 'FORBIDDEN' || e.code === 'FILE_NOT_FOUND' || e.code === 'BAD_USER_INPUT')) return { skip: 'a symlink that leads out of the data roots or to no file' };
      throw e;
    }
  };
  const reads = new XmlReads();
  const ahead: { names: readonly string[]; read: Promise<XmlRead[]> }[] = [];
  const take = async function* () {
    const b = ahead.shift()!;
    const read = await b.read;
    for (let k = 0; k < b.names.length; k++) yield { name: b.names[k]!, read: read[k]! };
  };
  try {
    for (let i = 0; i < names.length; i += XML_BATCH) {
      const batch = names.slice(i, i + XML_BATCH);
      const files = links.size === 0 ? batch.map((n) => path.join(dir, ...n.split('/'))) : await Promise.all(batch.map(fileOf));
      const read = reads.read(files, MAX_XML_BYTES);
      // Awaited in turn below; until then a failure must not count as unhandled.
      read.catch(() => undefined);
      ahead.push({ names: batch, read });
      if (ahead.length > XML_BATCHES_AHEAD) yield* take();
    }
    while (ahead.length > 0) yield* take();
  } finally {
    await reads.close();
  }
}

/** XML objects in a bucket, fetched a few dozen at a time (requests wait on the network) and parsed here, in name order. */
function readBucketXml(voc: VocLayout, names: readonly string[]): AsyncGenerator<{ name: string; read: XmlRead }> {
  const dir = voc.annotations;
  const parser = new VocXmlParser();
  return ordered(names, XML_WINDOW_BUCKET, async (name) => {
    let bytes: Uint8Array;
    try {
      bytes = await dir.store.readAll(dir.key === '' ? name : `${dir.key}/${name}`, { maxBytes: MAX_XML_BYTES });
    } catch (e) {
      if (isDataVisorError(e) && e.code === 'PAYLOAD_TOO_LARGE') return { name, read: { bytes: 0, doc: null, error: `larger than ${MAX_XML_BYTES} bytes` } };
      throw e;
    }
    try {
      return { name, read: { bytes: bytes.byteLength, doc: parser.parse(decodeXml(bytes)), error: null } };
    } catch (e) {
      if (!(e instanceof VocXmlError)) throw e;
      return { name, read: { bytes: bytes.byteLength, doc: null, error: e.message } };
    }
  });
}

function imageExtra(xmlName: string, doc: VocDocument, fileName: string): Record<string, unknown> {
  const out = record();
  out.annotation_file = xmlName;
  for (const k in doc.extra) out[k] = k === 'segmented' || k === 'depth' ? numberOrText(doc.extra[k]) : doc.extra[k];
  // The file's own <filename>, when the image was found under another name.
  if (doc.filename && doc.filename !== fileName) out.filename = doc.filename;
  return out;
}

/** difficult (false when absent: the devkit's default), truncated, occluded, pose, parts (boxes converted), anything else. */
function objectExtra(o: VocObject): Record<string, unknown> {
  const out = record();
  out.difficult = o.extra.difficult !== undefined ? attribute(o.extra.difficult) : false;
  for (const k in o.extra) {
    if (k === 'difficult') continue;
    const v = o.extra[k];
    if (k === 'parts') {
      out.parts = (v as Record<string, unknown>[]).map((part) => {
        const p = record();
        p.name = part.name;
        p.bbox = toCocoBox(part.bndbox as VocObject['bndbox']);
        for (const pk in part) if (pk !== 'name' && pk !== 'bndbox') p[pk] = part[pk];
        return p;
      });
    } else out[k] = FLAGS.has(k) ? attribute(v) : v;
  }
  return out;
}

/** `store`, whose list() of the folder `key` replays `listing()` once there is one. */
function replayingList(store: ObjectStore, key: string, listing: () => readonly string[] | null): ObjectStore {
  const replaying: ObjectStore = {
    kind: store.kind,
    url: (k) => store.url(k),
    stat: (k) => store.stat(k),
    openRead: (k, o) => store.openRead(k, o),
    readAll: (k, o) => store.readAll(k, o),
    list: (dir) => {
      const names = dir === key ? listing() : null;
      return names ? replay(names) : store.list(dir);
    },
  };
  if (store.presign) replaying.presign = (k, ttl) => store.presign!(k, ttl);
  return replaying;
}

async function* replay(names: readonly string[]): AsyncGenerator<string> {
  yield* names;
}

/**
 * `task` over `items` with at most `width` running, results in the items' order. Tasks that fail
 * fail the iteration when their turn comes (never as unhandled rejections); leaving early waits
 * for the running ones, so no read outlives the reader.
 */
async function* ordered<T, R>(items: AsyncIterable<T> | Iterable<T>, width: number, task: (item: T) => Promise<R>): AsyncGenerator<R> {
  type Settled = { ok: true; value: R } | { ok: false; error: unknown };
  const running: Promise<Settled>[] = [];
  const start = (item: T) => {
    running.push(task(item).then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })));
  };
  const next = async (): Promise<R> => {
    const r = await running.shift()!;
    if (!r.ok) throw r.error;
    return r.value;
  };
  try {
    for await (const item of items) {
      start(item);
      if (running.length >= width) yield await next();
    }
    while (running.length > 0) yield await next();
  } finally {
    await Promise.all(running);
  }
}

/** Reader warnings: counted, with the first few examples, in the order first met. */
class WarningTally {
  private readonly byCode = new Map<string, Warning>();

  add(code: string, message: string, example: string | number): void {
    const w = this.get(code, message);
    w.count++;
    if (w.examples.length < EXAMPLES) w.examples.push(example);
  }

  addAll(code: string, message: string, examples: readonly string[]): void {
    for (const e of examples) this.add(code, message, e);
  }

  addCount(code: string, message: string, count: number, examples: readonly (string | number)[]): void {
    const w = this.get(code, message);
    w.count += count;
    w.examples.push(...examples.slice(0, EXAMPLES - w.examples.length));
  }

  list(): Warning[] {
    return [...this.byCode.values()];
  }

  private get(code: string, message: string): Warning {
    let w = this.byCode.get(code);
    if (!w) this.byCode.set(code, (w = { code, count: 0, message, examples: [] }));
    return w;
  }
}
