import { CHECKPOINT } from './json-tokens.js';

/** stream-json's tokenizer slows down on large inputs, so forwarded chunks are fed in 16 KiB slices. */
const SLICE = 16 * 1024;

/**
 * The thread side of a part's flow control (parse-parts.ts): the chunks and checkpoints the main
 * thread sends, queued for the token pump (json-tokens.ts), which pulls them through chunks().
 */
export class PartInbox {
  private readonly queue: (Uint8Array | typeof CHECKPOINT | null)[] = [];
  private wake: (() => void) | null = null;
  /** Bytes of the file read (a prefix is not counted). */
  bytesRead = 0;

  /** A chunk of the file, a checkpoint, or null at the end of the part. */
  push(item: Uint8Array | typeof CHECKPOINT | null): void {
    this.queue.push(item);
    this.wake?.();
  }

  /**
   * The part as the pump reads it: `prefix` first, then each chunk in slices. `answered(block)`
   * runs once per chunk, when the pump asks for the next slice after its last one (the chunk is
   * fully read): one answer per forwarded chunk is what the main thread's flow control counts,
   * and the chunk's buffer goes back with it to be read into again.
   */
  async *chunks(prefix: string | null | undefined, answered: (block: ArrayBuffer) => void): AsyncGenerator<Buffer | string | typeof CHECKPOINT> {
    if (prefix) yield prefix;
    for (;;) {
      while (this.queue.length === 0) await new Promise<void>((r) => (this.wake = r));
      const item = this.queue.shift()!;
      if (item === null) return;
      if (item === CHECKPOINT) {
        yield item;
        continue;
      }
      const buf = Buffer.from(item.buffer, item.byteOffset, item.byteLength);
      for (let o = 0; o < buf.length; o += SLICE) yield buf.subarray(o, Math.min(o + SLICE, buf.length));
      this.bytesRead += buf.length;
      answered(item.buffer as ArrayBuffer);
    }
  }
}
