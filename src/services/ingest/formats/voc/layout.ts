import fs from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, isDataVisorError } from '../../../errors.js';
import type { InputLocation, StorageService } from '../../../storage/index.js';

/**
 * Where a Pascal VOC dataset's parts are (VOC2007/VOC2012 layout): `Annotations/` (one XML per
 * image), `JPEGImages/`, `ImageSets/Main/{train,val,test,trainval}.txt`. Every part is resolved
 * through StorageService, so the data roots hold for each (a symlinked `Annotations/` that leads
 * out of the roots is refused) and a bucket prefix works as a local folder does.
 */
export interface VocLayout {
  root: InputLocation;
  annotations: InputLocation;
  images: InputLocation;
}

/** The split lists read, in the order that decides an image listed twice. */
export const SPLIT_LISTS = ['train', 'val', 'test', 'trainval'] as const;
export type SplitName = (typeof SPLIT_LISTS)[number];

/** Extensions of the files counted as images of `JPEGImages/` (lower case). */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp']);

/** Where a name's extension starts (as path.posix.extname: not at a leading dot), or -1. */
function extensionAt(name: string): number {
  const dot = name.lastIndexOf('.');
  const start = name.lastIndexOf('/') + 1;
  return dot > start ? dot : -1;
}
export const isImageName = (name: string) => {
  const at = extensionAt(name);
  return at >= 0 && IMAGE_EXTENSIONS.has(name.slice(at).toLowerCase());
};
export const isXmlName = (name: string) => name.length > 4 && name.slice(-4).toLowerCase() === '.xml';
/** `a/b.xml` → `a/b`; names without an extension stay as they are. */
export const stemOf = (name: string) => {
  const at = extensionAt(name);
  return at < 0 ? name : name.slice(0, at);
};

/** The path or URL of a child of a resolved folder, to resolve in turn. */
export function childOf(dir: InputLocation, ...segments: string[]): string {
  return dir.location.kind === 'local' ? path.join(dir.url, ...segments) : [dir.url, ...segments].join('/');
}

export async function resolveLayout(annotationPath: string, imageDir: string | null, storage: StorageService): Promise<VocLayout> {
  const root = await resolveRoot(annotationPath, storage);
  const annotations = await optional(storage.resolveInput('annotation_path', childOf(root, 'Annotations'), 'directory'));
  if (!annotations) throw new BadInputError(await notVocMessage(annotationPath, root));
  let images: InputLocation | null;
  if (imageDir !== null) images = await storage.resolveInput('image_dir', imageDir, 'directory');
  else {
    images = await optional(storage.resolveInput('annotation_path', childOf(root, 'JPEGImages'), 'directory'));
    if (!images) {
      throw new BadInputError(
        `${JSON.stringify(annotationPath)} has Annotations/ but no JPEGImages/ folder: give image_dir, the folder holding the images the XML files name in <filename>`,
      );
    }
  }
  return { root, annotations, images };
}

async function resolveRoot(annotationPath: string, storage: StorageService): Promise<InputLocation> {
  try {
    return await storage.resolveInput('annotation_path', annotationPath, 'directory');
  } catch (e) {
    if (!isDataVisorError(e) || e.code !== 'BAD_USER_INPUT') throw e;
    // A file: say what it looks like.
    const file = await optional(storage.resolveInput('annotation_path', annotationPath, 'file')).catch(() => null);
    if (!file) throw e;
    const ext = path.extname(annotationPath).toLowerCase();
    const hint = ext === '.json'
      ? 'A JSON file is a COCO annotation file: ingest it with format "coco".'
      : ext === '.yaml' || ext === '.yml'
        ? 'A YAML file describes a YOLO dataset, which format "voc" does not read.'
        : ext === '.xml'
          ? 'One XML file annotates one image: give the folder above its Annotations/ folder.'
          : '';
    throw new BadInputError(
      `annotation_path ${JSON.stringify(annotationPath)} is a file; format "voc" reads a folder holding Annotations/ (one XML per image), JPEGImages/ and ImageSets/Main/*.txt. ${hint}`.trim(),
    );
  }
}

/** null for a location that does not exist (or is not the kind asked for); other errors go on. */
async function optional(p: Promise<InputLocation>): Promise<InputLocation | null> {
  try {
    return await p;
  } catch (e) {
    if (isDataVisorError(e) && (e.code === 'FILE_NOT_FOUND' || e.code === 'BAD_USER_INPUT')) return null;
    throw e;
  }
}

/** The top-level entries of a folder (folders end in `/`), at most `limit`. */
export async function topEntries(dir: InputLocation, limit = 300): Promise<string[]> {
  if (dir.location.kind === 'local') {
    const out: string[] = [];
    const handle = await fs.opendir(dir.key, { bufferSize: 64 });
    for await (const e of handle) {
      out.push(e.isDirectory() ? `${e.name}/` : e.name);
      if (out.length >= limit) break;
    }
    return out;
  }
  const seen = new Set<string>();
  let keys = 0;
  for await (const name of dir.store.list(dir.key)) {
    const slash = name.indexOf('/');
    seen.add(slash < 0 ? name : name.slice(0, slash + 1));
    if (++keys >= limit * 4 || seen.size >= limit) break;
  }
  return [...seen];
}

async function notVocMessage(annotationPath: string, root: InputLocation): Promise<string> {
  const entries = await topEntries(root).catch(() => [] as string[]);
  const has = (e: string) => entries.includes(e);
  const own = root.location.kind === 'local' ? path.basename(root.key) : (root.key.split('/').at(-1) ?? '');
  const years = entries.filter((e) => /^VOC\d{4}\/$/.test(e));
  const xml = entries.filter((e) => isXmlName(e)).length;
  let looks: string;
  if (years.length > 0) {
    looks = `It looks like a VOCdevkit folder: give one of its years, e.g. ${JSON.stringify(childOf(root, years[0]!.slice(0, -1)))}.`;
  } else if (own === 'Annotations' || (xml > 0 && xml >= entries.length / 2)) {
    looks = own === 'Annotations'
      ? `It is an Annotations/ folder itself: give the folder above it, ${JSON.stringify(path.dirname(annotationPath))}.`
      : `It holds ${xml} XML file(s) directly: put them in an Annotations/ folder and their images in JPEGImages/, then give the folder holding both.`;
  } else if (has('labels/') || entries.some((e) => /\.ya?ml$/i.test(e))) {
    looks = 'It looks like a YOLO dataset (a YAML file, images/ and labels/), which format "voc" does not read.';
  } else if (has('annotations/') || entries.some((e) => /\.json$/i.test(e))) {
    looks = 'It looks like a COCO dataset (JSON annotation files): ingest one JSON file with format "coco" and its image folder as image_dir.';
  } else if (entries.length === 0) {
    looks = 'It is empty.';
  } else {
    const shown = entries.slice(0, 8).join(', ');
    looks = `It holds ${shown}${entries.length > 8 ? ', …' : ''}.`;
  }
  return `annotation_path ${JSON.stringify(annotationPath)} is not a Pascal VOC folder: it has no Annotations/ folder. ${looks} ` +
    'A VOC folder (VOC2007/VOC2012 layout) holds Annotations/ (one XML per image), JPEGImages/ and ImageSets/Main/*.txt.';
}

/** Relative names (with `/`) of the `.xml` files under `Annotations/`, sorted; `links`: those that are symlinks (local only). */
export async function listXmlFiles(dir: InputLocation): Promise<{ names: string[]; links: Set<string> }> {
  const names: string[] = [];
  const links = new Set<string>();
  if (dir.location.kind === 'local') {
    for await (const { name, link } of walkLocal(dir.key)) {
      if (!isXmlName(name)) continue;
      names.push(name);
      if (link) links.add(name);
    }
  } else {
    for await (const name of dir.store.list(dir.key)) if (isXmlName(name)) names.push(name);
  }
  return { names: names.sort(), links };
}

/**
 * The files of the image folder, sorted, with lookups by name and (images only) by name without
 * extension. Every file is kept, not only images: the ingest's missing-file check replays this
 * listing instead of listing the folder again (voc-format.ts).
 */
export class ImageIndex {
  /** Per file: 1 once an XML file names it. */
  readonly used: Uint8Array;
  private byStem: Map<string, number> | null = null;

  private constructor(readonly names: readonly string[]) {
    this.used = new Uint8Array(names.length);
  }

  static async list(dir: InputLocation): Promise<ImageIndex> {
    const names: string[] = [];
    if (dir.location.kind === 'local') {
      for await (const { name } of walkLocal(dir.key)) names.push(name);
    } else {
      for await (const name of dir.store.list(dir.key)) names.push(name);
    }
    return new ImageIndex(names.sort());
  }

  /** Index of the file `name`, or -1. */
  find(name: string): number {
    return binarySearch(this.names, name);
  }

  /** Index of the first image (in name order) whose name without extension is `stem`, or -1. Built on first use. */
  findByStem(stem: string): number {
    if (!this.byStem) {
      const byStem = (this.byStem = new Map());
      this.names.forEach((n, i) => {
        if (!isImageName(n)) return;
        const s = stemOf(n);
        if (!byStem.has(s)) byStem.set(s, i);
      });
    }
    return this.byStem.get(stem) ?? -1;
  }
}

/**
 * Which split each image id is in, from `ImageSets/Main/{train,val,test,trainval}.txt` (one id per
 * line; the per-class lists such as `aeroplane_train.txt` are not read). `trainval` is the union
 * of train and val: its ids take the split of train or val, and only ids in neither are `trainval`.
 * An id in two of train, val and test (or in trainval and test) keeps the first, in that order,
 * and is counted as a conflict.
 */
export class SplitIndex {
  private constructor(
    private readonly ids: string[],
    private readonly splits: SplitName[],
    private readonly matched: Uint8Array,
    readonly conflicts: string[],
    readonly listsRead: SplitName[],
    readonly bytes: number,
  ) {}

  static async read(storage: StorageService, root: InputLocation): Promise<SplitIndex> {
    /** id → the lists naming it, one bit per list (1 << index in SPLIT_LISTS). */
    const lists = new Map<string, number>();
    const listsRead: SplitName[] = [];
    let bytes = 0;
    for (const [list, name] of SPLIT_LISTS.entries()) {
      const loc = await optional(storage.resolveInput('annotation_path', childOf(root, 'ImageSets', 'Main', `${name}.txt`), 'file'));
      if (!loc) continue;
      listsRead.push(name);
      const bit = 1 << list;
      const addLine = (line: string) => {
        // Main lists hold one id per line; a second column (`id  1`) appears only in per-class lists.
        const id = line.trim().split(/\s+/, 1)[0]!;
        if (id !== '') lists.set(id, (lists.get(id) ?? 0) | bit);
      };
      const decoder = new TextDecoder('utf-8');
      let rest = '';
      const take = (text: string) => {
        const lines = (rest + text).split('\n');
        rest = lines.pop()!;
        for (const line of lines) addLine(line);
      };
      for await (const block of await storage.openInput(loc, 64 * 1024)) {
        bytes += block.byteLength;
        take(decoder.decode(block, { stream: true }));
      }
      take(decoder.decode());
      addLine(rest);
    }
    const ids = [...lists.keys()].sort();
    const splits: SplitName[] = [];
    const conflicts: string[] = [];
    const TRAIN = 1, VAL = 2, TEST = 4, TRAINVAL = 8;
    for (const id of ids) {
      const m = lists.get(id)!;
      // The first of train, val, test; trainval only for ids in none of them.
      splits.push(m & TRAIN ? 'train' : m & VAL ? 'val' : m & TEST ? 'test' : 'trainval');
      const own = (m & TRAIN ? 1 : 0) + (m & VAL ? 1 : 0) + (m & TEST ? 1 : 0);
      // trainval agrees with train and val; with test it does not.
      if (own > 1 || (m & TRAINVAL && m & TEST)) {
        conflicts.push(`${id}: ${SPLIT_LISTS.filter((_, l) => m & (1 << l)).map((l) => `${l}.txt`).join(', ')}`);
      }
    }
    return new SplitIndex(ids, splits, new Uint8Array(ids.length), conflicts, listsRead, bytes);
  }

  /** The split of `id` (marking it as naming a known image), or null when no list names it. */
  lookup(id: string): SplitName | null {
    const i = binarySearch(this.ids, id);
    if (i < 0) return null;
    this.matched[i] = 1;
    return this.splits[i]!;
  }

  /** Ids no lookup asked for: listed, but no XML file nor image has them. `list.txt: id` each. */
  unmatched(): { count: number; examples: string[] } {
    let count = 0;
    const examples: string[] = [];
    for (let i = 0; i < this.ids.length; i++) {
      if (this.matched[i]) continue;
      count++;
      if (examples.length < 5) examples.push(`${this.splits[i]}.txt: ${this.ids[i]}`);
    }
    return { count, examples };
  }
}

/**
 * Files (and symlinks, as LocalStore.list counts them) under a local folder, relative with `/`.
 * One readdir per folder: a folder's names arrive in one batch, where iterating fs.opendir costs a
 * promise per entry (~2-3× the CPU on 20,000 files). A folder's entries are held while its
 * files are handed out; the callers keep every name anyway.
 */
async function* walkLocal(root: string): AsyncGenerator<{ name: string; link: boolean }> {
  const folders = [''];
  while (folders.length > 0) {
    const rel = folders.pop()!;
    const entries = await fs.readdir(rel === '' ? root : path.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const name = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) folders.push(name);
      else if (e.isFile() || e.isSymbolicLink()) yield { name, link: e.isSymbolicLink() };
    }
  }
}

/** Index of `key` in `sorted` (ascending by `<`), or -1. */
function binarySearch(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v < key) lo = mid + 1;
    else if (v > key) hi = mid - 1;
    else return mid;
  }
  return -1;
}

