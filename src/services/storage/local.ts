import { once } from 'node:events';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { DataVisorError } from '../errors.js';
import { listImageFiles } from '../images/image-files.js';
import { collect, guardStream, tooLargeError } from './retry.js';
import type { BlockBuffers, ObjectInfo, ObjectStore, ReadOptions } from './store.js';

/** Local files; keys are absolute paths, already checked against the data roots by the caller. */
export class LocalStore implements ObjectStore {
  readonly kind = 'local' as const;

  url(key: string): string {
    return key;
  }

  async stat(key: string): Promise<ObjectInfo> {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(key);
    } catch (e) {
      throw localError(key, e);
    }
    if (!st.isFile()) throw new DataVisorError('FILE_NOT_FOUND', `${key} is not a file`);
    // Size and modification time change whenever the file is rewritten, as in nginx's ETags.
    const etag = `"${Math.floor(st.mtimeMs).toString(16)}-${st.size.toString(16)}"`;
    return { size: st.size, etag, lastModified: st.mtime, contentType: null };
  }

  async openRead(key: string, options: ReadOptions = {}): Promise<Readable> {
    const stream = fs.createReadStream(key, { start: options.start, end: options.end });
    try {
      // The file is opened asynchronously: wait, so that a missing file fails here and not mid-read.
      await once(stream, 'ready');
    } catch (e) {
      stream.destroy();
      throw localError(key, e);
    }
    return guardStream(stream);
  }

  /**
   * Bytes `start` to `end` (inclusive, as openRead) in blocks of `blockSize`, each read into a
   * buffer from `buffers` when it has one: a consumer that hands its blocks back reads the whole
   * file in a few buffers, where a stream allocates one per block.
   */
  async *readBlocks(key: string, blockSize: number, options: { start?: number; end?: number } = {}, buffers?: BlockBuffers): AsyncGenerator<Uint8Array> {
    let file: fs.promises.FileHandle;
    try {
      file = await fs.promises.open(key, 'r');
    } catch (e) {
      throw localError(key, e);
    }
    try {
      const end = options.end === undefined ? Infinity : options.end + 1;
      for (let at = options.start ?? 0; at < end; ) {
        const buf = buffers?.take() ?? new Uint8Array(blockSize);
        const { bytesRead } = await file.read(buf, 0, Math.min(buf.byteLength, end - at), at);
        if (bytesRead === 0) return;
        at += bytesRead;
        yield bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await file.close();
    }
  }

  async readAll(key: string, options: { maxBytes: number }): Promise<Buffer> {
    const { size } = await this.stat(key);
    if (size > options.maxBytes) throw tooLargeError(key, size, options.maxBytes);
    return collect(await this.openRead(key), options.maxBytes, () => tooLargeError(key, null, options.maxBytes));
  }

  list(dir: string): AsyncIterable<string> {
    return listImageFiles(dir);
  }
}

function localError(file: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new DataVisorError('FILE_NOT_FOUND', `${file} does not exist`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new DataVisorError('FORBIDDEN', `Permission denied: ${file}`, { cause: e });
  return e;
}
