import fs from 'node:fs/promises';

/** A file under an image folder: its relative path (with `/`), and whether it is a symlink. */
export interface ImageFileEntry {
  name: string;
  link: boolean;
}

/**
 * Every file under `dir`, streamed so that a folder of millions of images never sits in memory.
 * Used to tell which images of a dataset have no file.
 *
 * Walked folder by folder rather than with `opendir(dir, { recursive: true })`: on Node 20 that
 * returns only the first `bufferSize` entries of each subfolder (a folder of 424 images under
 * `train/images` listed 256 of them), so images in large subfolders were reported missing.
 * Symlinked folders are not entered (a link is reported as one entry).
 */
export async function* listImageEntries(dir: string): AsyncGenerator<ImageFileEntry> {
  const pending = [''];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    const handle = await fs.opendir(rel === '' ? dir : `${dir}/${rel}`, { bufferSize: 256 });
    for await (const entry of handle) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) pending.push(name);
      else if (entry.isFile() || entry.isSymbolicLink()) yield { name, link: entry.isSymbolicLink() };
    }
  }
}

/** Relative paths (with `/`) of every file under `dir`. */
export async function* listImageFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of listImageEntries(dir)) yield entry.name;
}
