import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Relative paths (with `/`) of every file under `dir`, streamed so that a folder of millions of
 * images never sits in memory. Used to tell which images of a dataset have no file.
 */
export async function* listImageFiles(dir: string): AsyncGenerator<string> {
  const handle = await fs.opendir(dir, { recursive: true, bufferSize: 256 });
  for await (const entry of handle) {
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    const parent = (entry as { parentPath?: string }).parentPath ?? entry.path;
    const rel = path.relative(dir, path.join(parent, entry.name));
    yield path.sep === '/' ? rel : rel.split(path.sep).join('/');
  }
}
