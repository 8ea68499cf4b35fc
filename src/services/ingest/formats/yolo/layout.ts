import fs from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, DataVisorError } from '../../../errors.js';
import type { InputLocation, Location, StorageService } from '../../../storage/index.js';
import { commonDir, formatLocation, isBucketUrl, parseLocation } from '../../../storage/index.js';
import { baseName } from '../../../storage/location.js';
import { looksLikeDatasetYaml, parseClassesTxt, parseDatasetYaml } from './dataset-config.js';
import { isImageName } from './file-tree.js';
import { WarningTally } from './warnings.js';

/** A dataset YAML is a few KiB; a `.txt` image list of a large dataset some MiB. */
const MAX_YAML_BYTES = 16 * 1024 * 1024;
const MAX_LIST_BYTES = 256 * 1024 * 1024;

/** One path of a split: a folder of images, or a `.txt` list of them (resolved, sorted). */
export type SplitEntry = { kind: 'folder'; key: string } | { kind: 'list'; key: string; images: string[] };

export interface SplitPlan {
  /** `train`, `val`, `test`; null for a darknet folder (the ingest's own split applies). */
  name: string | null;
  entries: SplitEntry[];
}

/** Everything `read` needs, found by `resolve` before anything is ingested. */
export interface YoloPlan {
  names: Map<number, string>;
  kptShape: [number, number] | null;
  splits: SplitPlan[];
  /** Local files (fast path) or one bucket. */
  local: boolean;
  /** `.txt` files that are not labels: the image lists and `classes.txt`. */
  notLabels: Set<string>;
  /** Warnings found while resolving (nc, path, missing splits). */
  tally: WarningTally;
}

export interface ResolvedLayout {
  /** The YAML (or `classes.txt`): what the dataset records as its source. */
  config: InputLocation;
  images: InputLocation;
  defaultName: string;
  plan: YoloPlan;
}

/** Names of a YAML that say nothing about the dataset; the folder's name is used instead. */
const GENERIC_STEMS = new Set(['data', 'dataset', 'config', 'dataset_config']);

/**
 * Finds the YAML (or `classes.txt`), reads it, and resolves its splits as Ultralytics'
 * check_det_dataset does: `path` (default: the YAML's folder) joined with each split path; a split
 * written `../x` that does not exist there is tried as `x` (Roboflow's exports, whose `../train/images`
 * resolves only from the YAML's own folder). Every path is checked against the data roots.
 */
export async function resolveLayout(annotationPath: string, imageDir: string | null, storage: StorageService): Promise<ResolvedLayout> {
  const input = await resolveFileOrFolder(storage, 'annotation_path', annotationPath);
  let config: InputLocation;
  let fromFolder = false;
  if (input.kind === 'folder') {
    config = await findConfig(storage, input.location);
    fromFolder = true;
  } else {
    config = input.location;
  }
  const configName = baseName(config.location);
  const tally = new WarningTally();
  const configLoc = config.location;
  const configDir = parentOf(configLoc);
  let plan: YoloPlan;
  let defaultName: string;

  // Any file but a `.txt` is read as the dataset YAML (`data.yaml`, `config.yaml`, `coco8.yml`…).
  if (!/\.txt$/i.test(configName)) {
    const text = await readText(config, MAX_YAML_BYTES);
    const cfg = parseDatasetYaml(text, configName);
    if (cfg.ncMismatch !== null) {
      tally.add('nc_mismatch', `nc: ${cfg.ncMismatch}, names: ${cfg.names.size}`);
      tally.setMessage('nc_mismatch', `\`nc\` is ${cfg.ncMismatch} but \`names\` has ${cfg.names.size} classes; the names were used`);
    }
    let base = configDir;
    if (cfg.path !== null) {
      const p = joinLocation(configDir, cfg.path);
      const found = p ? await resolveEntry(storage, 'path', p, 'folder') : null;
      if (found?.kind === 'folder') base = found.location.location;
      else tally.add('dataset_path_not_found', cfg.path);
    }
    const splits: SplitPlan[] = [];
    for (const split of cfg.splits) {
      const entries: SplitEntry[] = [];
      for (const written of split.paths) {
        const entry = await resolveSplitPath(storage, base, written, !split.list);
        if (entry === null) {
          tally.add('split_folder_missing', `${split.name}: ${written}`);
          continue;
        }
        sameStore(entry.location, configLoc, configName);
        entries.push(entry.kind === 'folder' ? { kind: 'folder', key: entry.location.key } : { kind: 'list', key: entry.location.key, images: await readImageList(storage, entry.location) });
      }
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      if (entries.length > 0) splits.push({ name: split.name, entries });
    }
    if (splits.length === 0) {
      throw new DataVisorError('FILE_NOT_FOUND', `None of the splits of ${configName} exists (${cfg.splits.map((s) => `${s.name}: ${s.paths.join(', ')}`).join('; ')}), resolved from ${formatLocation(base)}. Check the YAML's \`path\` and split paths.`);
    }
    plan = { names: cfg.names, kptShape: cfg.kptShape, splits, local: configLoc.kind === 'local', notLabels: new Set(), tally };
    const stem = configName.replace(/\.ya?ml$/i, '');
    defaultName = fromFolder || GENERIC_STEMS.has(stem.toLowerCase()) ? baseName(input.kind === 'folder' ? input.location.location : configDir) : stem;
  } else {
    // darknet / labelImg: classes.txt beside the images (or in labels/, beside images/).
    const names = parseClassesTxt(await readText(config, MAX_YAML_BYTES), configName);
    const dir = configDir.kind === 'local' && path.basename(configDir.path) === 'labels' ? parentOf(configDir) : configDir;
    const root = await storage.resolveInput('annotation_path', formatLocation(dir), 'directory');
    plan = { names, kptShape: null, splits: [{ name: null, entries: [{ kind: 'folder', key: root.key }] }], local: dir.kind === 'local', notLabels: new Set([config.key]), tally };
    defaultName = baseName(dir);
  }
  for (const s of plan.splits) for (const e of s.entries) if (e.kind === 'list') plan.notLabels.add(e.key);

  // The image folder: the common root of every split folder and listed image, so each sample's
  // file name is a relative path under it.
  const keys: string[] = [];
  let bucket: string | null = null;
  for (const s of plan.splits) {
    for (const e of s.entries) {
      if (e.kind === 'folder') keys.push(e.key);
      else for (const k of distinctDirs(e.images.length === 0 ? [e.key] : e.images)) keys.push(k);
    }
  }
  if (configLoc.kind !== 'local') bucket = `${configLoc.kind}://${configLoc.bucket}`;
  const rootKey = keys.reduce(commonDir);
  const rootUrl = bucket === null ? rootKey || '/' : rootKey === '' ? bucket : `${bucket}/${rootKey}`;
  let images = await storage.resolveInput('image_dir', rootUrl, 'directory').catch((e: unknown) => {
    if (e instanceof DataVisorError && e.code === 'FORBIDDEN') {
      throw new DataVisorError('FORBIDDEN', `The splits of ${configName} lie in several folders whose common folder ${rootUrl} is outside the allowed data roots (DATAVISOR_DATA_ROOTS); the dataset's images must share one folder inside them: add it to the data roots`, { cause: e });
    }
    throw e;
  });
  if (imageDir !== null) {
    const given = await storage.resolveInput('image_dir', imageDir, 'directory');
    if (given.store !== images.store || !isUnder(given.key, images.key)) {
      throw new BadInputError(`image_dir ${JSON.stringify(imageDir)} does not hold the dataset's split folders (they are under ${images.url}); leave image_dir out for a YOLO dataset`);
    }
    images = given;
  }
  return { config, images, defaultName, plan };
}

type Resolved = { kind: 'folder' | 'file'; location: InputLocation };

async function resolveFileOrFolder(storage: StorageService, label: string, text: string): Promise<Resolved> {
  const loc = parseLocation(label, text);
  const fileFirst = loc.kind === 'local' || /\.(ya?ml|txt)$/i.test(text);
  try {
    return { kind: fileFirst ? 'file' : 'folder', location: await storage.resolveInput(label, text, fileFirst ? 'file' : 'directory') };
  } catch (e) {
    const otherKind = e instanceof DataVisorError && (e.code === 'BAD_USER_INPUT' || (loc.kind !== 'local' && e.code === 'FILE_NOT_FOUND'));
    if (!otherKind) throw e;
    return { kind: fileFirst ? 'folder' : 'file', location: await storage.resolveInput(label, text, fileFirst ? 'directory' : 'file') };
  }
}

/**
 * A folder given as annotation_path: its dataset YAML (a `.yaml`/`.yml` at its top with a `names`
 * key; `data.yaml`, or the one named after the folder, when there are several), else a darknet
 * `classes.txt` (in the folder or its `labels/`).
 */
async function findConfig(storage: StorageService, folder: InputLocation): Promise<InputLocation> {
  const label = 'annotation_path';
  if (folder.location.kind !== 'local') {
    for (const name of ['data.yaml', 'data.yml', 'classes.txt']) {
      const url = `${folder.url}/${name}`;
      try {
        return await storage.resolveInput(label, url, 'file');
      } catch (e) {
        if (!(e instanceof DataVisorError && e.code === 'FILE_NOT_FOUND')) throw e;
      }
    }
    throw new BadInputError(`${folder.url} holds no data.yaml or classes.txt; give the URL of the dataset's YAML as annotation_path`);
  }
  const dir = folder.key;
  const names = (await fs.readdir(dir)).sort();
  const yamls: string[] = [];
  for (const n of names.filter((n) => /\.ya?ml$/i.test(n))) {
    const head = await readHead(`${dir}/${n}`);
    if (head !== null && looksLikeDatasetYaml(head)) yamls.push(n);
  }
  let pick: string | undefined;
  if (yamls.length === 1) pick = yamls[0];
  else if (yamls.length > 1) {
    pick = yamls.find((n) => /^data\.ya?ml$/i.test(n)) ?? yamls.find((n) => n.replace(/\.ya?ml$/i, '') === path.basename(dir));
    if (!pick) throw new BadInputError(`${dir} holds several dataset YAMLs (${yamls.join(', ')}); give the one to ingest as annotation_path`);
  } else if (names.includes('classes.txt')) pick = 'classes.txt';
  else if (names.includes('labels') && (await fs.stat(`${dir}/labels/classes.txt`).then((s) => s.isFile(), () => false))) pick = 'labels/classes.txt';
  if (!pick) {
    throw new BadInputError(`${dir} is not a YOLO dataset: it holds no dataset YAML (a .yaml file with a \`names\` key) and no classes.txt. Give the dataset's YAML as annotation_path, or add one (names, and train/val/test folders).`);
  }
  return storage.resolveInput(label, `${dir}/${pick}`, 'file');
}

async function readHead(file: string): Promise<string | null> {
  try {
    const fh = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.toString('utf8', 0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    // An unreadable file is not the dataset's YAML; the folder is judged by the others.
    return null;
  }
}

async function readText(input: InputLocation, maxBytes: number): Promise<string> {
  return (await input.store.readAll(input.key, { maxBytes })).toString('utf8').replace(/^\uFEFF/, '');
}

/** A split path as Ultralytics resolves it: `base / written`, then (a single string written `../x`) `base / x`. */
async function resolveSplitPath(storage: StorageService, base: Location, written: string, single: boolean): Promise<{ kind: 'folder' | 'list'; location: InputLocation } | null> {
  const first = joinLocation(base, written);
  let firstError: DataVisorError | null = null;
  if (first) {
    const r = await resolveEntry(storage, 'split path', first, /\.txt$/i.test(written) ? 'list' : 'folder');
    if (r.kind !== 'missing' && r.kind !== 'forbidden') return r;
    if (r.kind === 'forbidden') firstError = r.error;
  }
  if (single && written.startsWith('../')) {
    const second = joinLocation(base, written.slice(3));
    if (second) {
      const r = await resolveEntry(storage, 'split path', second, /\.txt$/i.test(written) ? 'list' : 'folder');
      if (r.kind === 'forbidden') throw r.error;
      if (r.kind !== 'missing') return r;
    }
  }
  if (firstError) throw firstError;
  return null;
}

type Entry = { kind: 'folder' | 'list'; location: InputLocation } | { kind: 'missing' } | { kind: 'forbidden'; error: DataVisorError };

async function resolveEntry(storage: StorageService, label: string, loc: Location, guess: 'folder' | 'list'): Promise<Entry> {
  const url = formatLocation(loc);
  const order: ('folder' | 'list')[] = guess === 'folder' ? ['folder', 'list'] : ['list', 'folder'];
  for (const kind of order) {
    try {
      return { kind, location: await storage.resolveInput(label, url, kind === 'folder' ? 'directory' : 'file') };
    } catch (e) {
      if (!(e instanceof DataVisorError)) throw e;
      if (e.code === 'FORBIDDEN') return { kind: 'forbidden', error: e };
      // Local paths say "not a directory" / "not a file"; bucket keys are simply not found as the other kind.
      if (e.code === 'BAD_USER_INPUT' || (loc.kind !== 'local' && e.code === 'FILE_NOT_FOUND')) continue;
      if (e.code === 'FILE_NOT_FOUND') return { kind: 'missing' };
      throw e;
    }
  }
  return { kind: 'missing' };
}

/**
 * A `.txt` image list: one path a line; `./x` is relative to the list's folder (as in Ultralytics),
 * and so is any other relative path (Ultralytics reads those from its working directory, which a
 * server does not share). Each image's folder is checked against the data roots and taken by its
 * real path; the list is sorted as Ultralytics sorts it.
 */
async function readImageList(storage: StorageService, list: InputLocation): Promise<string[]> {
  const dir = parentOf(list.location);
  const realDirs = new Map<string, string>();
  const out: string[] = [];
  for (const raw of (await readText(list, MAX_LIST_BYTES)).split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const loc = joinLocation(dir, line.startsWith('./') ? line.slice(2) : line);
    if (!loc) continue;
    const url = formatLocation(loc);
    const slash = url.lastIndexOf('/');
    const name = url.slice(slash + 1);
    if (!isImageName(name)) continue;
    const parent = url.slice(0, slash) || '/';
    let real = realDirs.get(parent);
    if (real === undefined) {
      try {
        real = (await storage.resolveInput('image list entry', parent, 'directory')).key;
      } catch (e) {
        if (!(e instanceof DataVisorError) || e.code !== 'FILE_NOT_FOUND') throw e;
        // A folder that does not exist: its images are reported as unreadable.
        real = loc.kind === 'local' ? path.dirname(loc.path) : loc.key.slice(0, loc.key.lastIndexOf('/'));
      }
      realDirs.set(parent, real);
    }
    out.push(real === '' ? name : real === '/' ? `/${name}` : `${real}/${name}`);
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One dataset is one store: a local YAML's splits are local, a bucket YAML's are in its bucket. */
function sameStore(entry: InputLocation, config: Location, configName: string): void {
  const a = entry.location;
  if (a.kind === config.kind && (a.kind === 'local' || (config.kind !== 'local' && a.bucket === config.bucket))) return;
  throw new BadInputError(`${configName} names a split in another store (${entry.url}); the splits of a dataset must be in the same place as its YAML (local disk, or the same bucket)`);
}

function* distinctDirs(keys: readonly string[]): Generator<string> {
  let last: string | null = null;
  for (const k of keys) {
    const d = k.slice(0, Math.max(0, k.lastIndexOf('/'))) || (k.startsWith('/') ? '/' : '');
    if (d !== last) yield d;
    last = d;
  }
}

export function isUnder(parent: string, child: string): boolean {
  return parent === child || parent === '' || parent === '/' || child.startsWith(`${parent}/`);
}

function parentOf(loc: Location): Location {
  if (loc.kind === 'local') return { kind: 'local', path: path.dirname(loc.path) };
  const slash = loc.key.lastIndexOf('/');
  return { ...loc, key: slash < 0 ? '' : loc.key.slice(0, slash) };
}

/** `rel` from `base` as Python's `Path(base) / rel` (an absolute `rel` wins); null when a bucket path leaves the bucket. */
function joinLocation(base: Location, rel: string): Location | null {
  if (isBucketUrl(rel)) return parseLocation('path', rel);
  if (base.kind === 'local') return { kind: 'local', path: path.resolve(base.path, rel) };
  if (rel.startsWith('/')) return null;
  const parts = base.key === '' ? [] : base.key.split('/');
  for (const s of rel.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(s);
  }
  return { ...base, key: parts.join('/') };
}
