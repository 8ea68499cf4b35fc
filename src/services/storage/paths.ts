import { realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, DataVisorError, ForbiddenError } from '../errors.js';

/**
 * Path rules of DataVisor: what ingestion may read (DATAVISOR_DATA_ROOTS) and how an image's
 * `file_name` maps into its dataset's folder. Both are security boundaries, so both resolve
 * symlinks before they compare.
 */

const BUCKET_URL = /^(s3|gs):\/\//i;

export function isBucketUrl(p: string): boolean {
  return BUCKET_URL.test(p);
}

function checkText(label: string, p: string): void {
  if (typeof p !== 'string' || p.trim() === '') throw new BadInputError(`${label} must be a non-empty path`);
  if (p.includes('\0')) throw new BadInputError(`${label} must not contain a NUL byte`);
}

/** True when `child` is `parent` or inside it (both absolute and normalized). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolves a local path given to ingestion and checks it against the roots, after following
 * symlinks (a link inside a root that points outside is refused). Throws FILE_NOT_FOUND when it
 * does not exist, FORBIDDEN when it is outside every root.
 */
export async function resolveAllowedPath(
  label: string,
  p: string,
  roots: readonly string[],
  kind: 'file' | 'directory' | 'any',
): Promise<string> {
  checkText(label, p);
  // Bucket URLs are resolved by StorageService.resolveInput, which checks them against the bucket roots.
  if (isBucketUrl(p)) throw new BadInputError(`${label}: ${JSON.stringify(p)} is a bucket URL, not a local path`);
  const abs = path.resolve(p);
  let real: string;
  try {
    real = await fs.realpath(abs);
  } catch (cause) {
    // Refuse before revealing whether a path outside the roots exists.
    if (!(await withinAnyRoot(abs, roots))) throw outside(label, p);
    throw new DataVisorError('FILE_NOT_FOUND', `${label} ${JSON.stringify(p)} does not exist`, { cause });
  }
  if (!(await withinAnyRoot(real, roots))) throw outside(label, p);
  const st = await fs.stat(real);
  if (kind === 'file' && !st.isFile()) throw new BadInputError(`${label} ${JSON.stringify(p)} is not a file`);
  if (kind === 'directory' && !st.isDirectory()) throw new BadInputError(`${label} ${JSON.stringify(p)} is not a directory`);
  return real;
}

async function withinAnyRoot(p: string, roots: readonly string[]): Promise<boolean> {
  for (const root of roots) {
    if (isBucketUrl(root)) continue;
    const realRoot = await fs.realpath(root).catch(() => path.resolve(root));
    if (isWithin(realRoot, p)) return true;
  }
  return false;
}

function outside(label: string, p: string): ForbiddenError {
  return new ForbiddenError(`${label} ${JSON.stringify(p)} is outside the allowed data roots (DATAVISOR_DATA_ROOTS)`);
}

/**
 * The file of an image of a dataset's folder. `file_name` comes from the annotation file, so it is
 * untrusted: absolute paths, `..` segments, backslashes and NUL bytes are refused. A symlink is
 * followed within the data roots: DVC and git-annex keep an image folder of links into a content
 * store elsewhere, and ingestion may read anywhere under the roots anyway; one that leads out of
 * them is refused after resolution.
 */
export async function resolveImageFile(imageDir: string, fileName: string, roots: readonly string[]): Promise<string> {
  if (!isSafeRelativeName(fileName)) {
    throw new ForbiddenError(`file_name ${JSON.stringify(fileName)} points outside the dataset's image folder`);
  }
  const joined = path.join(imageDir, fileName);
  let real: string;
  try {
    // One realpath(3) call, made synchronously: on a thumbnail miss the libuv pool is full of
    // sharp's decodes, and queueing behind them cost each miss most of a decode's time.
    real = realpathSync.native(joined);
  } catch (cause) {
    throw new DataVisorError('FILE_NOT_FOUND', `image file ${JSON.stringify(fileName)} is not in ${imageDir}`, { cause });
  }
  // The folder's own real path is remembered (one lookup fewer per thumbnail miss), and looked up
  // again before refusing a file, so a folder whose symlink was re-pointed is judged by its target now.
  if (isWithin(await realFolder(imageDir), real) || (await isWithinRoots(real, roots)) || isWithin(await realFolder(imageDir, true), real)) {
    return real;
  }
  throw new ForbiddenError(`file_name ${JSON.stringify(fileName)} is a link that leads outside the allowed data roots`);
}

/** Whether a real path lies within a local data root; their real paths are remembered as the folders' are. */
export async function isWithinRoots(real: string, roots: readonly string[]): Promise<boolean> {
  for (const fresh of [false, true]) {
    for (const root of roots) if (!isBucketUrl(root) && isWithin(await realFolder(root, fresh), real)) return true;
  }
  return false;
}

const realFolders = new Map<string, string>();
const MAX_REAL_FOLDERS = 1000;

async function realFolder(dir: string, fresh = false): Promise<string> {
  const known = fresh ? undefined : realFolders.get(dir);
  if (known !== undefined) return known;
  const real = await fs.realpath(dir).catch(() => dir);
  if (realFolders.size >= MAX_REAL_FOLDERS) realFolders.clear();
  realFolders.set(dir, real);
  return real;
}

export function isSafeRelativeName(name: string): boolean {
  if (!name || name.includes('\0') || name.includes('\\')) return false;
  if (path.isAbsolute(name) || /^[a-z]:/i.test(name)) return false;
  return name.split('/').every((seg) => seg !== '..' && seg !== '');
}

/** The deepest folder holding both (posix paths, or keys within one bucket). */
export function commonDir(a: string, b: string): string {
  const x = a.split('/');
  const y = b.split('/');
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  const common = x.slice(0, i).join('/');
  return common === '' && a.startsWith('/') ? '/' : common;
}
