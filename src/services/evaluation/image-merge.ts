/** One image's rows from both sides, in the order they came. */
export interface ImageRows<G, D> {
  imageId: number;
  gts: G[];
  dts: D[];
}

/**
 * Merges two streams of row chunks, each sorted by image id, into one group per image in
 * ascending image id (an image on one side only gets an empty list on the other). Holds one
 * chunk of each side and the image being built; awaits once per chunk, not per row.
 */
export async function* imagesInOrder<G extends { imageId: number }, D extends { imageId: number }>(
  gtChunks: AsyncIterable<G[]>,
  dtChunks: AsyncIterable<D[]>,
): AsyncGenerator<ImageRows<G, D>> {
  const gts = new RowCursor(gtChunks);
  const dts = new RowCursor(dtChunks);
  try {
    for (;;) {
      const g = await gts.peek();
      const d = await dts.peek();
      if (g === undefined && d === undefined) return;
      const imageId = Math.min(g?.imageId ?? Infinity, d?.imageId ?? Infinity);
      yield { imageId, gts: await gts.takeWhile(imageId), dts: await dts.takeWhile(imageId) };
    }
  } finally {
    // Leaving early (an error while evaluating) closes both queries' connections.
    await gts.close();
    await dts.close();
  }
}

class RowCursor<T extends { imageId: number }> {
  private readonly chunks: AsyncIterator<T[]>;
  private chunk: T[] = [];
  private at = 0;
  private done = false;

  constructor(source: AsyncIterable<T[]>) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  /** The next row, loading the next chunk when this one is read. */
  async peek(): Promise<T | undefined> {
    if (this.at < this.chunk.length || (await this.fill())) return this.chunk[this.at];
    return undefined;
  }

  /** The rows of one image, read within a chunk without awaiting. */
  async takeWhile(imageId: number): Promise<T[]> {
    const out: T[] = [];
    for (;;) {
      while (this.at < this.chunk.length && this.chunk[this.at]!.imageId === imageId) out.push(this.chunk[this.at++]!);
      if (this.at < this.chunk.length || !(await this.fill())) return out;
    }
  }

  /** Loads the next non-empty chunk; false at the end. */
  private async fill(): Promise<boolean> {
    while (!this.done) {
      const next = await this.chunks.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunk = next.value;
        this.at = 0;
        return true;
      }
    }
    return false;
  }

  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}
