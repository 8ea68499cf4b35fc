import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DataVisorError } from '../services/errors.js';

export interface DemoDataset {
  annotationPath: string;
  imageDir: string;
  imageCount: number;
  annotationCount: number;
}

/** What a folder is made for: a folder made for another key is regenerated, never reused. */
export interface DatasetKey {
  version: number;
  seed: number;
  images: number;
}

/**
 * Writes the annotation file and the images into the (temporary) folder; resolves to the number of
 * annotations, which the marker records.
 */
export type FillFolder = (files: { annotationPath: string; imageDir: string }) => Promise<number>;

const ANNOTATION_FILE = 'annotations.json';
const IMAGE_FOLDER = 'images';
const MARKER_FILE = '.complete';
/** Everything a demo folder may hold; a folder with anything else is not ours to delete. */
const OWN_ENTRIES = new Set([ANNOTATION_FILE, IMAGE_FOLDER, MARKER_FILE]);

interface Marker extends DatasetKey {
  annotations: number;
}

/**
 * Reuses `target` if it holds a complete dataset for `key`, else builds one with `fill`.
 *
 * The dataset is built in a temporary sibling folder and renamed into place with its marker file
 * already inside, so `target` is either absent, a complete dataset, or a leftover we can recognise.
 */
export async function ensureDatasetFolder(target: string, key: DatasetKey, fill: FillFolder): Promise<DemoDataset> {
  const existing = await readCompleteDataset(target, key);
  if (existing) return existing;

  // Refuse a folder of someone else's files now rather than after drawing every image.
  await assertOwnFolder(target);
  const parent = path.dirname(target);
  await fs.mkdir(parent, { recursive: true });
  await removeStaleTempFolders(parent, path.basename(target));

  const temp = path.join(
    parent,
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  let renamed = false;
  try {
    const imageDir = path.join(temp, IMAGE_FOLDER);
    await fs.mkdir(imageDir, { recursive: true });
    const annotations = await fill({ annotationPath: path.join(temp, ANNOTATION_FILE), imageDir });
    const marker: Marker = { ...key, annotations };
    await writeDurably(path.join(temp, MARKER_FILE), `${JSON.stringify(marker)}\n`);

    // Another process may have finished the same dataset while we were drawing.
    const raced = await readCompleteDataset(target, key);
    if (raced) return raced;
    await removeOwnFolder(target);
    try {
      await fs.rename(temp, target);
      renamed = true;
    } catch (e) {
      const winner = await readCompleteDataset(target, key);
      if (winner) return winner;
      throw new DataVisorError('INTERNAL', `could not move the demo dataset into ${target}`, { cause: e });
    }
    return describe(target, marker);
  } finally {
    if (!renamed) await fs.rm(temp, { recursive: true, force: true });
  }
}

function describe(target: string, marker: Marker): DemoDataset {
  return {
    annotationPath: path.join(target, ANNOTATION_FILE),
    imageDir: path.join(target, IMAGE_FOLDER),
    imageCount: marker.images,
    annotationCount: marker.annotations,
  };
}

async function readCompleteDataset(target: string, key: DatasetKey): Promise<DemoDataset | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(target, MARKER_FILE), 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
    throw e;
  }
  const marker = parseMarker(text);
  if (
    !marker ||
    marker.version !== key.version ||
    marker.seed !== key.seed ||
    marker.images !== key.images
  ) {
    return undefined;
  }
  const found = describe(target, marker);
  const [annotations, imageDir] = await Promise.all([statIfExists(found.annotationPath), statIfExists(found.imageDir)]);
  return annotations?.isFile() && imageDir?.isDirectory() ? found : undefined;
}

async function statIfExists(file: string) {
  try {
    return await fs.stat(file);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

function parseMarker(text: string): Marker | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // A torn or hand-edited marker means the folder is not a dataset we can vouch for.
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const fields = [m.version, m.seed, m.images, m.annotations];
  return fields.every((f) => Number.isInteger(f)) ? (value as Marker) : undefined;
}

/**
 * Throws unless `target` is absent or holds nothing but demo files: we delete leftovers, and a
 * mistyped path must never cost user data. Returns whether the folder exists.
 */
async function assertOwnFolder(target: string): Promise<boolean> {
  let entries: string[];
  try {
    entries = await fs.readdir(target);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw new DataVisorError('CONFLICT', `${target} exists and is not a demo dataset folder`, { cause: e });
  }
  const foreign = entries.filter((name) => !OWN_ENTRIES.has(name));
  if (foreign.length > 0) {
    throw new DataVisorError(
      'CONFLICT',
      `${target} holds files that are not part of the demo dataset (${foreign.slice(0, 3).join(', ')}); ` +
        'move them away or choose another folder',
    );
  }
  return true;
}

async function removeOwnFolder(target: string): Promise<void> {
  if (await assertOwnFolder(target)) await fs.rm(target, { recursive: true, force: true });
}

/** Removes temp folders left by generators that crashed; those of live processes are left alone. */
async function removeStaleTempFolders(parent: string, base: string): Promise<void> {
  const prefix = `.${base}.tmp-`;
  for (const name of await fs.readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (pid === process.pid || (Number.isInteger(pid) && pid > 0 && isAlive(pid))) continue;
    await fs.rm(path.join(parent, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return isErrno(e, 'EPERM');
  }
}

async function writeDurably(file: string, data: string): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code;
}
