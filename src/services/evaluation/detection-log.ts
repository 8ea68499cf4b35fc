import { A } from './params.js';

const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;

interface Chunk {
  score: Float64Array;
  category: Uint32Array;
  rank: Uint8Array;
  flags: Uint32Array;
}

/**
 * What accumulate needs of every evaluated detection, 29 bytes each in fixed-size typed-array chunks
 * (no per-detection objects, no doubling copies): category, rank within its image and category (for
 * maxDets 1 and 10), score, and per area range the TP / ignored bits of the 10 IoU thresholds.
 * Records are appended in image order, which is the tie order of pycocotools' cross-image sort.
 */
export class DetectionLog {
  private readonly chunks: Chunk[] = [];
  size = 0;

  push(category: number, rank: number, score: number, flags: Uint32Array, flagsOffset: number): void {
    const o = this.size & MASK;
    if (o === 0) {
      this.chunks.push({
        score: new Float64Array(CHUNK),
        category: new Uint32Array(CHUNK),
        rank: new Uint8Array(CHUNK),
        flags: new Uint32Array(CHUNK * A),
      });
    }
    const c = this.chunks[this.chunks.length - 1]!;
    c.score[o] = score;
    c.category[o] = category;
    c.rank[o] = rank;
    for (let a = 0; a < A; a++) c.flags[o * A + a] = flags[flagsOffset + a]!;
    this.size++;
  }

  /** Scores of the records at `positions`, in that order. */
  readScores(positions: Uint32Array, out: Float64Array): void {
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      out[i] = this.chunks[p >>> CHUNK_BITS]!.score[p & MASK]!;
    }
  }

  /** Records positions[order[i]] for i = 0, 1, …: score, rank and flags ([i * A + a]). */
  readRanked(positions: Uint32Array, order: Uint32Array, score: Float64Array, rank: Uint8Array, flags: Uint32Array): void {
    for (let i = 0; i < positions.length; i++) {
      const p = positions[order[i]!]!;
      const c = this.chunks[p >>> CHUNK_BITS]!;
      const o = p & MASK;
      score[i] = c.score[o]!;
      rank[i] = c.rank[o]!;
      for (let a = 0; a < A; a++) flags[i * A + a] = c.flags[o * A + a]!;
    }
  }

  /** Positions grouped by category, each group in append order: [starts (K + 1), positions]. */
  byCategory(categoryCount: number): [Uint32Array, Uint32Array] {
    const starts = new Uint32Array(categoryCount + 1);
    for (let p = 0; p < this.size; p++) {
      const k = this.category(p);
      starts[k + 1] = starts[k + 1]! + 1;
    }
    for (let k = 0; k < categoryCount; k++) starts[k + 1] = starts[k + 1]! + starts[k]!;
    const next = starts.slice(0, categoryCount);
    const positions = new Uint32Array(this.size);
    for (let p = 0; p < this.size; p++) {
      const k = this.category(p);
      positions[next[k]!] = p;
      next[k] = next[k]! + 1;
    }
    return [starts, positions];
  }

  private category(p: number): number {
    return this.chunks[p >>> CHUNK_BITS]!.category[p & MASK]!;
  }
}
