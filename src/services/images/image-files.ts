import fs from 'node:fs/promises';
import path from 'node:path';

/** A file under an image folder: its relative path (with `/`), and whether it is a symlink. */
export interface ImageFileEntry {
  name: string;
  link: boolean;
}

/**
 * Every file under `dir`, streamed so that a folder of millions of images never sits in memory.
 * Used to tell which images of a dataset have no file.
 */
export async function* listImageEntries(dir: string): AsyncGenerator<ImageFileEntry> {
  const handle = await fs.opendir(dir, { recursive: true, bufferSize: 256 });
  for await (const entry of handle) {
    const link = entry.isSymbolicLink();
    if (!entry.isFile() && !link) continue;
    const parent = (entry as { parentPath?: string }).parentPath ?? entry.path;
    const rel = path.relative(dir, path.join(parent, entry.name));
    yield { name: path.sep === '/' ? rel : rel.split(path.sep).join('/'), link };
  }
}

/** Relative paths (with `/`) of every file under `dir`. */
export async function* listImageFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of listImageEntries(dir)) yield entry.name;
}
