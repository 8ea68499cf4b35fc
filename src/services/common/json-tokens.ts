import { StringDecoder } from 'node:string_decoder';
import { jsonParser, type Token } from 'stream-json/parser.js';
import { DataVisorError } from '../errors.js';

/**
 * Drives stream-json's tokenizer synchronously over the byte chunks of a readable source.
 *
 * Why not `parser()` + `pick` + `streamArray`: assembling every object through a chain of Node
 * streams costs ~70 s on a 450 MB COCO file; calling the tokenizer function directly over 16 KiB
 * blocks and picking fields from packed tokens costs ~5.5 s (docs/ingestion.md). Small read
 * blocks matter: the tokenizer re-slices its buffer, so 1 MiB blocks are 2x slower.
 */
export type TokenHandler = (tokens: readonly Token[]) => void;

export interface PumpResult {
  bytesRead: number;
}

/**
 * A source item that marks where a part of a file split for parallel parsing ends
 * (parse-coco.ts): everything before it is tokenized, its last character alone, and
 * `onCheckpoint` learns whether that character closed an object. A `}` inside a string or a
 * number emits no `endObject`, so a true answer proves the text ends right after an object.
 */
export const CHECKPOINT: unique symbol = Symbol('checkpoint');

const NONE = Symbol.for('object-stream.none');
const MANY = Symbol.for('object-stream.many');

/**
 * Python's json.dump writes NaN / Infinity, which JSON does not allow and the tokenizer rejects.
 * The text is rewritten before tokenizing, where a value can stand, to number literals that no
 * real file holds (they underflow to 0). Telling a value from the same letters inside a string
 * needs the tokenizer's state, so the reader undoes the rewrite in string tokens and turns the
 * number tokens into null (coco-reader.ts). Nothing is scanned when a block holds neither word.
 */
const NON_STANDARD_NUMBER = /([:,[]\s*)(NaN|-?Infinity)(?=\s*[,\]}])/g;
const SENTINEL: Record<string, string> = { NaN: '7.7e-99997', Infinity: '7.7e-99998', '-Infinity': '7.7e-99999' };
const SENTINEL_STEM = '7.7e-9999';
const SENTINEL_TEXT = /7\.7e-9999([789])/g;
const WORD: Record<string, string> = { '7': 'NaN', '8': 'Infinity', '9': '-Infinity' };

/** True for a number token that stands for NaN / Infinity. */
export function isNonStandardNumber(token: string): boolean {
  return token.length === 10 && token.startsWith(SENTINEL_STEM);
}

const VALUE: Record<string, number> = { '7': NaN, '8': Infinity, '9': -Infinity };

/** The number a token for which isNonStandardNumber is true stands for. */
export function nonStandardValue(token: string): number {
  return VALUE[token[9]!]!;
}

/** True when `text` may hold a rewritten NaN / Infinity. */
export function holdsNonStandardNumber(text: string): boolean {
  return text.indexOf(SENTINEL_STEM) !== -1;
}

/** A string token with the rewrite undone. */
export function restoreNonStandardText(s: string): string {
  return holdsNonStandardNumber(s) ? s.replace(SENTINEL_TEXT, (_m, d: string) => WORD[d]!) : s;
}
/** Characters held back at a block's end when it has no separator to cut at (inside a long string). */
const HOLD_BACK = 16;

/**
 * Where to cut a window: at its last `,` `:` or `[`, so that a NaN after it stays in one window
 * with the separator before it and the character after it. A fixed number of characters is not
 * enough: json.dump(indent=4) puts 17+ spaces between `[` and a nested array's first element.
 */
function cutPoint(text: string): number {
  const separator = Math.max(text.lastIndexOf(','), text.lastIndexOf(':'), text.lastIndexOf('['));
  return separator > 0 ? separator : text.length - HOLD_BACK;
}

export interface PumpOptions {
  /** Called once, before the first block in which NaN / Infinity were rewritten is tokenized. */
  onNonStandardNumbers?: () => void;
  onCheckpoint?: (closedObject: boolean) => void;
  /**
   * Rewrites each text just before it is tokenized; every character passes through it once, in
   * order. It must keep the text's length, so that byte offsets in errors stay true.
   */
  transform?: (text: string) => string;
}

/**
 * Reads `source` to the end, handing each block's tokens to `onTokens` synchronously (so the
 * handler keeps plain local state), and yields the bytes read after every block: the consumer
 * does its async work (progress events, plugin hooks, cancellation) between blocks.
 */
export async function* pumpJsonTokens(
  source: AsyncIterable<Buffer | string | typeof CHECKPOINT>,
  onTokens: TokenHandler,
  describeLocation: (relation?: 'in' | 'after') => string,
  options: PumpOptions = {},
): AsyncGenerator<number, PumpResult> {
  const { onNonStandardNumbers = () => undefined, onCheckpoint = () => undefined, transform } = options;
  const tokenize = jsonParser({ packValues: true, streamValues: false }) as unknown as (input: string | symbol) => unknown;
  const decoder = new StringDecoder('utf8');
  let bytesRead = 0;
  /** Where the text fed next begins: the held-back characters come first (give or take a token the tokenizer keeps). */
  let blockStart = 0;
  let pending = '';
  let first = true;
  let rewrote = false;

  /** Tokenizes `text`, hands the tokens on, and returns the last one. */
  const feed = (text: string | symbol): Token | undefined => {
    let out: unknown;
    try {
      out = tokenize(transform && typeof text === 'string' ? transform(text) : text);
    } catch (cause) {
      const reason = (cause as Error).message.replace(/^Parser (cannot parse input: |has )/, '');
      const message =
        text === NONE
          ? `Truncated JSON: the file ends at byte ${bytesRead}${describeLocation()} before the document is complete (${reason})`
          : // The tokenizer reports no position and drops the block's tokens when it throws, so the
            // honest precision is the block: its byte range, and the element that was open when it began.
            `Malformed JSON between bytes ${Math.max(0, blockStart - HOLD_BACK)} and ${bytesRead}${describeLocation('after')}: ${reason}`;
      throw new DataVisorError('INVALID_JSON', message, { cause });
    }
    if (out === NONE || out === undefined) return undefined;
    const many = out as { [MANY]?: number; values: Token[] };
    const tokens = many[MANY] === 1 ? many.values : [out as Token];
    onTokens(tokens);
    return tokens[tokens.length - 1];
  };

  const fixNumbers = (text: string) => {
    if (text.indexOf('NaN') === -1 && text.indexOf('Infinity') === -1) return text;
    return text.replace(NON_STANDARD_NUMBER, (_m, prefix: string, word: string) => {
      if (!rewrote) {
        rewrote = true;
        onNonStandardNumbers();
      }
      return prefix + SENTINEL[word]!;
    });
  };

  const stripBom = (text: string) => {
    if (!first || text.length === 0) return text;
    first = false;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  };

  for await (const chunk of source) {
    if (chunk === CHECKPOINT) {
      // `pending` was rewritten for NaN when it was cut from its window.
      const text = pending;
      pending = '';
      if (text.length > 1) feed(text.slice(0, -1));
      onCheckpoint(text.endsWith('}') && feed(text.slice(-1))?.name === 'endObject');
      continue;
    }
    // What is held back runs from the window's last separator, which can be far more than HOLD_BACK characters.
    blockStart = bytesRead - Buffer.byteLength(pending);
    bytesRead += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    // Fix NaN/Infinity over the whole window: the lookahead needs the character after the token.
    const text = fixNumbers(stripBom(pending + (typeof chunk === 'string' ? chunk : decoder.write(chunk))));
    const cut = cutPoint(text);
    if (cut > 0) {
      pending = text.slice(cut);
      feed(text.slice(0, cut));
    } else {
      pending = text;
    }
    yield bytesRead;
  }
  const rest = fixNumbers(stripBom(pending + decoder.end()));
  if (rest) feed(rest);
  feed(NONE);
  return { bytesRead };
}
