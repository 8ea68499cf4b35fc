import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';

/**
 * Where a split's images are and where their label files should be, found as Ultralytics finds
 * them: every file under a split folder whose extension is an image format (hidden files and
 * folders skipped, as its glob does), in path order; the label of `…/images/…/x.jpg` is
 * `…/labels/…/x.txt` (the last `images` folder of the path becomes `labels`), or `x.txt` beside the
 * image when the path has no `images` folder (the darknet / labelImg layout).
 */

/** Ultralytics' IMG_FORMATS. */
const IMAGE_EXTENSIONS = new Set(['bmp', 'dng', 'jpeg', 'jpg', 'mpo', 'png', 'tif', 'tiff', 'webp', 'pfm', 'heic']);

export function isImageName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.has(name.slice(dot + 1).toLowerCase());
}

/** `x.jpg` → `x.txt`. */
export function labelNameOf(imageName: string): string {
  const dot = imageName.lastIndexOf('.');
  return `${dot < 0 ? imageName : imageName.slice(0, dot)}.txt`;
}

/** The folder labels of images in `dir` are in (posix paths and bucket keys alike). */
export function labelDirOf(dir: string): string {
  const parts = dir.split('/');
  const i = parts.lastIndexOf('images');
  if (i < 0) return dir;
  parts[i] = 'labels';
  return parts.join('/');
}

/** An image's label file key (Ultralytics' img2label_paths). */
export function labelKeyOf(imageKey: string): string {
  const slash = imageKey.lastIndexOf('/');
  const dir = imageKey.slice(0, slash);
  return `${labelDirOf(dir)}/${labelNameOf(imageKey.slice(slash + 1))}`;
}

export interface ImageEntry {
  /** Local path or object key of the image. */
  key: string;
  /** Its label file's key; null when the listing showed there is none. */
  label: string | null;
  /** True when `label` came from a listing (it exists); false: try to read it, and a miss is no label. */
  labelListed: boolean;
}

export interface WalkHooks {
  /** Whether a label folder may be read (data roots) and exists; throws FORBIDDEN outside the roots. */
  labelDirUsable(dir: string): Promise<boolean>;
  /** A `.txt` file with no image of its name (a label file without an image). */
  orphanLabel(key: string): void;
  /** `.txt` files that are not labels (`classes.txt`, image lists): full paths. */
  notLabels: ReadonlySet<string>;
}

/** Images per array a local walk yields: one async step per image cost ~0.2 s of 118,287. */
export const WALK_CHUNK = 256;

/**
 * A local split folder, depth first in the order of the paths' text (a folder's entries sorted,
 * folders by their name and a `/`), so images come in the order Ultralytics' sorted glob gives, a
 * few hundred at a time. Memory is one folder's listing at a time (two with its label folder),
 * however large the tree.
 */
export async function* walkLocal(dir: string, hooks: WalkHooks): AsyncGenerator<ImageEntry[]> {
  // Names only (a folder's `/` appended): a folder of 100,000 images is 100,000 short strings.
  const names = await listDir(dir);
  const labelDir = labelDirOf(dir);
  const sameDir = labelDir === dir;
  // Label file names, each marked once an image has it (`a.jpg` and `a.png` share `a.txt`, as in Ultralytics).
  const labelFiles = new Map<string, boolean>();
  let labelSubdirs: string[] = [];
  if (sameDir) {
    for (const n of names) if (n.endsWith('.txt') && !hooks.notLabels.has(`${dir}/${n}`)) labelFiles.set(n, false);
  } else if (await hooks.labelDirUsable(labelDir)) {
    const inLabels = await listDir(labelDir);
    labelSubdirs = inLabels.filter((n) => n.endsWith('/'));
    for (const n of inLabels) if (n.endsWith('.txt') && !hooks.notLabels.has(`${labelDir}/${n}`)) labelFiles.set(n, false);
  }
  // A folder holding both `images` and `labels`: the labels are read through the images.
  const skipLabelsDir = names.includes('images/') && names.includes('labels/');
  // Sorted as whole paths sort: a folder's entries come where `name/…` falls among its files.
  // (The default sort compares UTF-16 code units, as `<` does, without a JavaScript callback.)
  names.sort();
  let chunk: ImageEntry[] = [];
  for (const name of names) {
    if (name.endsWith('/')) {
      if (skipLabelsDir && name === 'labels/') continue;
      if (chunk.length > 0) yield chunk;
      chunk = [];
      yield* walkLocal(`${dir}/${name.slice(0, -1)}`, hooks);
    } else if (isImageName(name)) {
      const labelName = labelNameOf(name);
      const listed = labelFiles.has(labelName);
      if (listed) labelFiles.set(labelName, true);
      chunk.push({ key: `${dir}/${name}`, label: listed ? `${labelDir}/${labelName}` : null, labelListed: true });
      if (chunk.length < WALK_CHUNK) continue;
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
  for (const [name, matched] of labelFiles) if (!matched) hooks.orphanLabel(`${labelDir}/${name}`);
  // Label folders with no image folder of their name: every label in them is an orphan.
  for (const sub of labelSubdirs) if (!names.includes(sub)) await orphansUnder(`${labelDir}/${sub.slice(0, -1)}`, hooks);
}

async function orphansUnder(dir: string, hooks: WalkHooks): Promise<void> {
  for (const name of await listDir(dir)) {
    if (name.endsWith('/')) await orphansUnder(`${dir}/${name.slice(0, -1)}`, hooks);
    else if (name.endsWith('.txt') && !hooks.notLabels.has(`${dir}/${name}`)) hooks.orphanLabel(`${dir}/${name}`);
  }
}

/**
 * A folder's entry names, folders with a `/` after theirs, hidden ones left out; symlinks count
 * as files (a folder of links is a common way to assemble a dataset).
 */
async function listDir(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
  const names: string[] = [];
  for (const e of entries) if (!e.name.startsWith('.')) names.push(e.isDirectory() ? `${e.name}/` : e.name);
  return names;
}

/** A bucket split folder, in the listing's order (S3 and GCS list keys sorted); labels are tried per image. */
export async function* walkBucket(list: AsyncIterable<string>, prefix: string): AsyncGenerator<ImageEntry> {
  for await (const rel of list) {
    if (rel.split('/').some((s) => s.startsWith('.'))) continue;
    if (!isImageName(rel.slice(rel.lastIndexOf('/') + 1))) continue;
    const key = prefix === '' ? rel : `${prefix}/${rel}`;
    yield { key, label: labelKeyOf(key), labelListed: false };
  }
}

/** Images of a `.txt` list (already resolved and sorted); labels are tried per image. */
export function* listedImages(keys: readonly string[]): Generator<ImageEntry> {
  for (const key of keys) yield { key, label: labelKeyOf(key), labelListed: false };
}

/** The same, a walk's few hundred at a time. */
export function* listedImageChunks(keys: readonly string[]): Generator<ImageEntry[]> {
  for (let i = 0; i < keys.length; i += WALK_CHUNK) yield [...listedImages(keys.slice(i, i + WALK_CHUNK))];
}

