import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError } from '../errors.js';
import { isDatasetId } from '../ids.js';

/** Dataset ids become folder names: the id rule's alphabet can never climb out of the cache. */
export function assertDatasetId(datasetId: string): void {
  if (!isDatasetId(datasetId)) throw new BadInputError(`Dataset id ${JSON.stringify(datasetId)} is not a dataset id (16 characters a-z, 2-7)`);
}

/** What the folders of datasets ids made by ingestion (newDatasetId) and of their removal look like. */
const MADE_ID = /^[a-z2-7]{16}$/;
const TRASH = /^\.trash-[A-Za-z0-9_-]{1,128}-[0-9a-f]{12}$/;

/** Sizes × 256 fan-out folders of a few datasets. */
const MAX_KNOWN_FOLDERS = 4096;

/** Where one thumbnail lives: `<root>/<datasetId>/<size>/<hh>/<hash>.webp`. */
export interface ThumbnailPath {
  dir: string;
  file: string;
}

/**
 * The disk half of the thumbnail cache. Files are only ever created by renaming a finished temp
 * file, and only exact `<hash>.webp` names are read, so a reader sees a whole thumbnail or none.
 */
export class ThumbnailStore {
  /** Folders known to exist: a miss then writes its file without a mkdir first. */
  readonly #folders = new Set<string>();

  constructor(readonly root: string) {}

  /** `hash` is hex; its first two characters fan files out so no folder grows past ~1/256 of a dataset. */
  locate(datasetId: string, size: string, hash: string): ThumbnailPath {
    assertDatasetId(datasetId);
    const dir = path.join(this.root, datasetId, size, hash.slice(0, 2));
    return { dir, file: path.join(dir, `${hash}.webp`) };
  }

  /**
   * Synchronous on purpose: a thumbnail is a few KB on local disk and a miss is one failed stat,
   * while the async version waits in the libuv pool behind sharp's decodes (a miss looks here first).
   * The stat answers a miss without an exception, whose stack capture cost more than the syscall.
   */
  read(at: ThumbnailPath): Buffer | undefined {
    try {
      if (!statSync(at.file, { throwIfNoEntry: false })) return undefined;
      return readFileSync(at.file);
    } catch (e) {
      // Removed between the stat and the read, or a path through a file (ENOTDIR).
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async has(at: ThumbnailPath): Promise<boolean> {
    try {
      return (await stat(at.file)).isFile();
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  }

  async write(at: ThumbnailPath, body: Buffer): Promise<void> {
    // A removeDataset running at the same time can move the folder away between any two steps;
    // starting over recreates it. Three tries is plenty since removals are rare.
    for (let attempt = 1; ; attempt++) {
      // Unique per writer, so two processes sharing the cache never write into the same temp file.
      const temp = `${at.file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
      try {
        if (!this.#folders.has(at.dir)) {
          await mkdir(at.dir, { recursive: true });
          if (this.#folders.size >= MAX_KNOWN_FOLDERS) this.#folders.clear();
          this.#folders.add(at.dir);
        }
        await writeFile(temp, body, { flag: 'wx' });
        await rename(temp, at.file);
        return;
      } catch (e) {
        this.#folders.delete(at.dir);
        await rm(temp, { force: true });
        if (!isMissing(e) || attempt === 3) throw e;
      }
    }
  }

  /**
   * Removes the folders of datasets not in `keep` (a process killed mid-ingest leaves the
   * thumbnails it made), and trash a removal left behind. Only folders that look like ours are
   * touched: an id as ingestion makes them holding nothing but size folders. They are moved aside
   * before this returns; deleting them is the promise.
   */
  sweep(keep: ReadonlySet<string>, sizes: readonly string[]): Promise<void> {
    const trash: string[] = [];
    // A failure (a folder it may not read) is reported once what was moved aside is deleted; it
    // never stops DataVisor from opening, and nothing is served from a folder left behind.
    let failure: unknown = null;
    try {
      for (const entry of readdirSync(this.root, { withFileTypes: true })) {
        const name = entry.name;
        if (TRASH.test(name)) trash.push(name);
        if (!entry.isDirectory() || !MADE_ID.test(name) || keep.has(name)) continue;
        const folder = path.join(this.root, name);
        if (!readdirSync(folder).every((size) => sizes.includes(size))) continue;
        const to = `.trash-${name}-${randomBytes(6).toString('hex')}`;
        renameSync(folder, path.join(this.root, to));
        trash.push(to);
      }
    } catch (e) {
      if (!isMissing(e)) failure = e;
    }
    return Promise.all(trash.map((t) => rm(path.join(this.root, t), { recursive: true, force: true }))).then(() => {
      if (failure) throw failure;
    });
  }

  /**
   * Moves the dataset's folder aside in one atomic rename, then deletes it. Writers that race with
   * the deletion therefore never make `rm` fail with ENOTEMPTY; they start a fresh folder instead.
   */
  async removeDataset(datasetId: string): Promise<void> {
    assertDatasetId(datasetId);
    // A leading dot can never be a dataset id, so the trash folder cannot collide with one.
    const trash = path.join(this.root, `.trash-${datasetId}-${randomBytes(6).toString('hex')}`);
    const folder = path.join(this.root, datasetId) + path.sep;
    for (const dir of this.#folders) if (dir.startsWith(folder)) this.#folders.delete(dir);
    try {
      await rename(path.join(this.root, datasetId), trash);
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    await rm(trash, { recursive: true, force: true });
  }
}

/** ENOTDIR too: a path through something that is not a folder cannot hold a thumbnail either. */
function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
