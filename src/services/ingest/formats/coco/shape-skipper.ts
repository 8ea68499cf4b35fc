/**
 * Polygons are most of a COCO file: on train2017, 41M of its 68M JSON tokens are the numbers of
 * `segmentation` arrays, which an ingest without `store_shapes` only counts. Tokenizing them one
 * by one is most of the parse. This pass runs over the text before the tokenizer and replaces each
 * `segmentation` / `keypoints` array of an annotation that it can prove valid (arrays and JSON
 * numbers only, closed within the text at hand) with one string that carries its counts:
 *
 *     "segmentation": [[10.5, 20, 30.25, 40], [1, 2, 3, 4]]
 *     "segmentation": "<prefix>2:8"                       (padded with spaces to the same length)
 *
 * which the reader decodes (coco-reader.ts). The replacement has the same length, so every byte
 * offset the parser reports stays true. Anything it cannot prove (a string, an object such as RLE,
 * NaN, a malformed number, an array cut by the end of the text, a key written with escapes) is
 * left as it is for the tokenizer, which then reads it, or reports its error, exactly as before.
 * The prefix holds a random nonce, so no string in a file can pass for a summary.
 *
 * To know where an annotation's keys are, the pass tracks the JSON structure: strings (with
 * escapes, across texts), nesting, object keys, and the top-level section. It assumes nothing
 * about invalid JSON beyond the point where it stops being valid: the tokenizer throws there, on
 * the same text, before anything after it matters.
 */

import { holdsNonStandardNumber } from '../../../common/json-tokens.js';

/** Annotation keys whose values are polygon / keypoint data (the reader keeps them as raw text). */
export const RAW_KEYS: ReadonlySet<string> = new Set(['segmentation', 'keypoints']);
/** Deeper nesting than this is left to the tokenizer alone. */
const MAX_DEPTH = 64;
/** Longest key remembered (section names and annotation keys are short). */
const MAX_KEY = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Whether `text[from, to)` spells a raw key, without slicing the text. */
function isRawKeyAt(text: string, from: number, to: number): boolean {
  for (const key of RAW_KEYS) if (to - from === key.length && text.startsWith(key, from)) return true;
  return false;
}

const SPACES = ' '.repeat(4096);
const spaces = (n: number) => (n <= SPACES.length ? SPACES.slice(0, n) : ' '.repeat(n));

/** A summary string of the pass: its counts, or null when `s` is not one. Read by hand: it runs once per annotation. */
export function readShapeSummary(s: string, prefix: string): { arrays: number; numbers: number } | null {
  if (!s.startsWith(prefix)) return null;
  let arrays = 0;
  let i = prefix.length;
  for (let c = s.charCodeAt(i); c !== COLON; c = s.charCodeAt(++i)) arrays = arrays * 10 + (c - 0x30);
  let numbers = 0;
  for (i++; i < s.length; i++) numbers = numbers * 10 + (s.charCodeAt(i) - 0x30);
  return { arrays, numbers };
}

export class ShapeSkipper {
  /** Container kinds, innermost last: true = object. */
  private readonly objects: boolean[] = [];
  private inString = false;
  /** The text ended right after a backslash inside a string. */
  private escaped = false;
  private expectKey = false;
  /** Characters of the key being read (it may span texts), or null when it is no key we track. */
  private keyText: string | null = null;
  private topKey: string | null = null;
  /** Inside the top-level "annotations" array. */
  private inAnnotations = false;
  /** The last key read directly inside an annotation is a raw key. */
  private rawKeyRead = false;
  /** A raw key and its colon were read: an array right after is a candidate. */
  private rawValueNext = false;
  private disabled = false;
  /** Arrays replaced so far (for tests). */
  replaced = 0;

  constructor(private readonly prefix: string) {}

  transform(text: string): string {
    if (this.disabled) return text;
    // A NaN rewritten by the tokenizer pump (json-tokens.ts) must reach the reader as a token.
    const mayReplace = !holdsNonStandardNumber(text);
    const objects = this.objects;
    let out: string[] | null = null;
    let emitted = 0;
    let rawNext = this.rawValueNext;
    const n = text.length;
    let i = this.inString ? this.continueString(text, 0) : 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      // Most characters are digits, letters and spaces: nothing to track.
      if (c <= 0x20) continue;
      if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === 0x2e || c === 0x2d) {
        rawNext = false;
        continue;
      }
      if (c === QUOTE) {
        rawNext = false;
        const end = this.shortKey(text, i + 1);
        if (end !== -1) {
          i = end;
          continue;
        }
        this.startString();
        i = this.continueString(text, i + 1) - 1;
        continue;
      }
      if (c === OPEN_ARRAY && rawNext) {
        rawNext = false;
        const end = rawArrayEnd(text, i);
        if (end !== null) {
          const summary = `"${this.prefix}${end.arrays}:${end.numbers}"`;
          const length = end.index - i + 1;
          if (mayReplace && summary.length <= length) {
            (out ??= []).push(text.slice(emitted, i), summary, spaces(length - summary.length));
            emitted = end.index + 1;
            this.replaced++;
          }
          // The whole array is one value of the annotation, replaced or not.
          i = end.index;
          continue;
        }
      }
      rawNext = false;
      switch (c) {
        case OPEN_OBJECT:
        case OPEN_ARRAY:
          if (objects.length >= MAX_DEPTH) {
            this.disabled = true;
            return out ? out.join('') + text.slice(emitted) : text;
          }
          objects.push(c === OPEN_OBJECT);
          this.expectKey = c === OPEN_OBJECT;
          if (objects.length === 2) this.inAnnotations = this.topKey === 'annotations';
          break;
        case CLOSE_OBJECT:
        case CLOSE_ARRAY:
          objects.pop();
          this.expectKey = false;
          if (objects.length <= 1) this.inAnnotations = false;
          break;
        case COMMA:
          this.expectKey = objects[objects.length - 1] === true;
          break;
        case COLON:
          rawNext = this.rawKeyRead && this.inAnnotationObject();
          break;
        default:
          break;
      }
    }
    this.rawValueNext = rawNext;
    return out ? out.join('') + text.slice(emitted) : text;
  }

  /**
   * The common case of a key, read in place: an annotation's key (or a section name) closed
   * within this text, short and without escapes. Returns the index of its closing quote, or -1
   * for every other string (read by continueString).
   */
  private shortKey(text: string, from: number): number {
    if (!this.expectKey || !this.tracksKeys()) return -1;
    const quote = text.indexOf('"', from);
    if (quote === -1 || quote - from > MAX_KEY) return -1;
    for (let k = from; k < quote; k++) if (text.charCodeAt(k) === BACKSLASH) return -1;
    this.expectKey = false;
    if (this.objects.length === 1) this.topKey = text.slice(from, quote);
    else this.rawKeyRead = isRawKeyAt(text, from, quote);
    return quote;
  }

  /** Keys are tracked at the top level (section names) and directly inside an annotation. */
  private tracksKeys(): boolean {
    return this.objects.length === 1 || this.inAnnotationObject();
  }

  private inAnnotationObject(): boolean {
    return this.objects.length === 3 && this.inAnnotations;
  }

  private startString(): void {
    this.inString = true;
    this.escaped = false;
    this.keyText = this.expectKey && this.tracksKeys() ? '' : null;
    this.expectKey = false;
  }

  /** Reads string characters from `from`; returns the index after the closing quote, or text.length. */
  private continueString(text: string, from: number): number {
    let i = from;
    if (this.escaped) {
      // The character after a backslash that ended the previous text.
      this.escaped = false;
      this.keyText = null;
      i++;
    }
    for (;;) {
      const quote = text.indexOf('"', i);
      // A quote preceded by an odd run of backslashes is escaped.
      const until = quote === -1 ? text.length : quote;
      let backslashes = 0;
      while (until - backslashes - 1 >= i && text.charCodeAt(until - backslashes - 1) === BACKSLASH) backslashes++;
      if (quote === -1) {
        this.escaped = backslashes % 2 === 1;
        this.appendKey(text, i, text.length);
        return text.length;
      }
      if (backslashes % 2 === 1) {
        this.keyText = null;
        i = quote + 1;
        continue;
      }
      this.appendKey(text, i, quote);
      this.endString();
      return quote + 1;
    }
  }

  private appendKey(text: string, from: number, to: number): void {
    if (this.keyText === null) return;
    if (this.keyText.length + (to - from) > MAX_KEY) {
      this.keyText = null;
      return;
    }
    const part = text.slice(from, to);
    // A key written with escapes is left to the tokenizer.
    this.keyText = part.includes('\\') ? null : this.keyText + part;
  }

  private endString(): void {
    this.inString = false;
    const key = this.keyText;
    this.keyText = null;
    if (this.objects.length === 1) this.topKey = key;
    else if (this.inAnnotationObject()) this.rawKeyRead = key !== null && RAW_KEYS.has(key);
  }
}

/**
 * The end of the array that opens at `start`, if it holds only arrays and JSON numbers and closes
 * within `text`: its closing index, the arrays directly inside it and the numbers at any depth.
 */
function rawArrayEnd(text: string, start: number): { index: number; arrays: number; numbers: number } | null {
  let depth = 0;
  let arrays = 0;
  let numbers = 0;
  // What may come next: 0 a value or a close (just opened), 1 a value (after a comma), 2 a comma or a close.
  let expect = 0;
  // Number state: 0 none, 1 after '-', 2 after a leading 0, 3 integer digits, 4 after '.',
  // 5 fraction digits, 6 after 'e', 7 after the exponent's sign, 8 exponent digits.
  let num = 0;
  const n = text.length;
  for (let i = start; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (num === 0) {
        if (expect === 2) return null;
        num = c === 0x30 ? 2 : 3;
      } else if (num === 2) {
        return null; // a leading zero
      } else if (num === 1) {
        num = c === 0x30 ? 2 : 3;
      } else if (num === 4) {
        num = 5;
      } else if (num >= 6) {
        num = 8;
      }
      continue;
    }
    if (num !== 0) {
      if (c === 0x2e) {
        if (num !== 2 && num !== 3) return null;
        num = 4;
        continue;
      }
      if (c === 0x65 || c === 0x45) {
        if (num !== 2 && num !== 3 && num !== 5) return null;
        num = 6;
        continue;
      }
      if (c === 0x2b || c === 0x2d) {
        if (num !== 6) return null;
        num = 7;
        continue;
      }
      // The number ends here: it must be whole.
      if (num !== 2 && num !== 3 && num !== 5 && num !== 8) return null;
      num = 0;
      numbers++;
      expect = 2;
    }
    if (c === COMMA) {
      if (expect !== 2) return null;
      expect = 1;
    } else if (c === CLOSE_ARRAY) {
      if (expect === 1) return null;
      expect = 2;
      if (--depth === 0) return { index: i, arrays, numbers };
    } else if (c === OPEN_ARRAY) {
      if (expect === 2) return null;
      if (++depth === 2) arrays++;
      expect = 0;
    } else if (c === 0x2d) {
      if (expect === 2) return null;
      num = 1;
    } else if (!isSpace(c)) {
      return null;
    }
  }
  return null;
}
