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
  /** How many NaN / Infinity values were read as null. */
  nonStandardNumbers: number;
}

const NONE = Symbol.for('object-stream.none');
const MANY = Symbol.for('object-stream.many');

/** Python's json.dump writes NaN / Infinity, which JSON does not allow; values in those positions become null. */
const NON_STANDARD_NUMBER = /([:,[]\s*)(?:NaN|-?Infinity)(?=\s*[,\]}])/g;
/** Characters held back at a block's end so that a token split across blocks is still seen whole. */
const HOLD_BACK = 16;

/**
 * Reads `source` to the end, handing each block's tokens to `onTokens` synchronously (so the
 * handler keeps plain local state), and yields the bytes read after every block: the consumer
 * does its async work (progress events, plugin hooks, cancellation) between blocks.
 */
export async function* pumpJsonTokens(
  source: AsyncIterable<Buffer | string>,
  onTokens: TokenHandler,
  describeLocation: () => string,
): AsyncGenerator<number, PumpResult> {
  const tokenize = jsonParser({ packValues: true, streamValues: false }) as unknown as (input: string | symbol) => unknown;
  const decoder = new StringDecoder('utf8');
  let bytesRead = 0;
  let pending = '';
  let first = true;
  let nonStandardNumbers = 0;

  const feed = (text: string | symbol) => {
    let out: unknown;
    try {
      out = tokenize(text);
    } catch (cause) {
      const reason = (cause as Error).message.replace(/^Parser (cannot parse input: |has )/, '');
      const message =
        text === NONE
          ? `Truncated JSON: the file ends at byte ${bytesRead}${describeLocation()} before the document is complete (${reason})`
          : `Malformed JSON near byte ${bytesRead}${describeLocation()}: ${reason}`;
      throw new DataVisorError('INVALID_JSON', message, { cause });
    }
    if (out === NONE || out === undefined) return;
    const many = out as { [MANY]?: number; values: Token[] };
    onTokens(many[MANY] === 1 ? many.values : [out as Token]);
  };

  const fixNumbers = (text: string) => {
    if (text.indexOf('NaN') === -1 && text.indexOf('Infinity') === -1) return text;
    return text.replace(NON_STANDARD_NUMBER, (_m, prefix: string) => {
      nonStandardNumbers++;
      return `${prefix}null`;
    });
  };

  const stripBom = (text: string) => {
    if (!first || text.length === 0) return text;
    first = false;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  };

  for await (const chunk of source) {
    bytesRead += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    // Fix NaN/Infinity over the whole window: the lookahead needs the character after the token.
    const text = fixNumbers(stripBom(pending + (typeof chunk === 'string' ? chunk : decoder.write(chunk))));
    if (text.length > HOLD_BACK) {
      pending = text.slice(-HOLD_BACK);
      feed(text.slice(0, -HOLD_BACK));
    } else {
      pending = text;
    }
    yield bytesRead;
  }
  const rest = fixNumbers(stripBom(pending + decoder.end()));
  if (rest) feed(rest);
  feed(NONE);
  return { bytesRead, nonStandardNumbers };
}
