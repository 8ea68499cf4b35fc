import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Relative paths (with `/`) of every file under `dir`, streamed so that a folder of millions of
 * images never sits in memory. Used to tell which images of a dataset have no file.
 *
 * Walked folder by folder rather than with `opendir(dir, { recursive: true })`: on Node 20 that
 * returns only the first `bufferSize` entries of each subfolder (a folder of 424 images under
 * `train/images` listed 256 of them), so images in large subfolders were reported missing.
 */
export async function* listImageFiles(dir: string): AsyncGenerator<string> {
  const pending = [''];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    const handle = await fs.opendir(rel === '' ? dir : path.join(dir, rel), { bufferSize: 256 });
    for await (const entry of handle) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) pending.push(name);
      else if (entry.isFile() || entry.isSymbolicLink()) yield name;
    }
  }
}
