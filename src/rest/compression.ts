import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { COMPRESSIBLE_CONTENT_TYPE_REGEX } from 'hono/compress';
import { parseAccept } from 'hono/utils/accept';
import type { AppEnv } from './router.js';

/**
 * Response compression with Node's zlib: brotli when the client takes it, else gzip, else none
 * (docs/rest.md, "Compression"). hono/compress was not enough: it encodes through
 * CompressionStream, which on Node 20 has gzip and deflate but no brotli, and it would compress a
 * cached page again on every request.
 */

export type Encoding = 'br' | 'gzip';

/** Smaller answers go as they are: a kilobyte fits in one packet, and the headers cost as much as is saved. */
export const MIN_COMPRESS_BYTES = 1024;

/**
 * Answers made per request: brotli quality 5. On a 26 KB page of samples it takes 0.1 ms and is
 * within 8% of quality 11, which takes 67 ms; gzip's default level takes 0.3 ms for 50% more bytes.
 */
const DYNAMIC = { br: { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }, gzip: { level: 6 } };
/** Files compressed once and kept (GraphiQL's bundle): worth a second of one pool thread, once. */
const STATIC = { br: { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9 } }, gzip: { level: 9 } };

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

/** Compresses on libuv's pool, off the event loop. */
export function encode(body: Uint8Array, encoding: Encoding, kind: 'dynamic' | 'static' = 'dynamic'): Promise<Buffer> {
  const levels = kind === 'static' ? STATIC : DYNAMIC;
  if (encoding === 'br') {
    return brotli(body, { params: { ...levels.br.params, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.byteLength } });
  }
  return gzip(body, levels.gzip);
}

/** Accept-Encoding values seen lately and their choice: browsers send the same few strings. */
const chosen = new Map<string, Encoding | null>();
const CHOSEN_MAX = 64;

/**
 * The encoding to answer with: the acceptable one (q > 0, named or through `*`) with the highest
 * q, brotli on a tie; null for identity (no header, or neither acceptable).
 */
export function negotiate(acceptEncoding: string | undefined): Encoding | null {
  if (!acceptEncoding) return null;
  let choice = chosen.get(acceptEncoding);
  if (choice !== undefined) return choice;
  const accepts = parseAccept(acceptEncoding);
  const q = (name: string) => accepts.find((a) => a.type.toLowerCase() === name)?.q ?? accepts.find((a) => a.type === '*')?.q ?? 0;
  const br = q('br');
  const gz = q('gzip');
  choice = br > 0 && br >= gz ? 'br' : gz > 0 ? 'gzip' : null;
  if (chosen.size >= CHOSEN_MAX) chosen.clear();
  chosen.set(acceptEncoding, choice);
  return choice;
}

/**
 * Adds `Accept-Encoding` to Vary. On Node it goes straight onto the outgoing response, where the
 * CORS policy puts its `Vary: Origin` (src/rest/auth.ts): a Vary on the Response would replace it.
 */
export function varyOnEncoding(c: Context<AppEnv>): void {
  const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
  const vary = outgoing ? outgoing.getHeader('vary') : c.res.headers.get('vary');
  if (vary && /accept-encoding/i.test(String(vary))) return;
  if (outgoing) outgoing.setHeader('vary', vary ? `${String(vary)}, Accept-Encoding` : 'Accept-Encoding');
  else c.header('Vary', 'Accept-Encoding', { append: true });
}

/** A compressed answer's ETag is weak: its bytes differ from the identity answer's, which the strong tag names. */
export function weakEtag(etag: string): string {
  return etag.startsWith('W/') ? etag : `W/${etag}`;
}

/**
 * Compresses compressible answers (HTML, JSON, JavaScript, CSS… as hono/compress lists them; never
 * event streams or images) of at least MIN_COMPRESS_BYTES, per Accept-Encoding, with Vary. Routes
 * that negotiate themselves are passed by: `skip` names them (images, whose originals answer byte
 * ranges; the sample pages, whose cache keeps compressed bytes). HEAD, 204, 206 and 304 answers
 * and ones with `Cache-Control: no-transform` or a Content-Encoding go as they are. The body is
 * read whole: every compressible answer here is finite and already in memory.
 */
export function compression(skip: (path: string) => boolean): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (skip(c.req.path)) return next();
    await next();
    const res = c.res;
    if (c.req.method === 'HEAD' || res.status === 204 || res.status === 206 || res.status === 304 || !res.body) return;
    const type = res.headers.get('content-type');
    if (!type || !COMPRESSIBLE_CONTENT_TYPE_REGEX.test(type)) return;
    if (res.headers.has('content-encoding') || /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(res.headers.get('cache-control') ?? '')) return;
    const length = res.headers.get('content-length');
    if (length !== null && Number(length) < MIN_COMPRESS_BYTES) return;
    varyOnEncoding(c);
    const encoding = negotiate(c.req.header('accept-encoding'));
    if (!encoding) return;
    const body = new Uint8Array(await res.arrayBuffer());
    // Copied by hand: GraphQL's answers are whatwg-node Responses, whose headers a Response
    // constructor does not take as they are.
    const headers = new Headers();
    res.headers.forEach((value, name) => headers.set(name, value));
    let out: Uint8Array = body;
    if (body.byteLength >= MIN_COMPRESS_BYTES) {
      out = await encode(body, encoding);
      headers.set('content-encoding', encoding);
      const etag = headers.get('etag');
      if (etag) headers.set('etag', weakEtag(etag));
    }
    headers.set('content-length', String(out.byteLength));
    // Cleared first: Hono's setter would copy the old answer's headers (its length) over the new one's.
    c.res = undefined;
    c.res = new Response(out as Uint8Array<ArrayBuffer>, { status: res.status, statusText: res.statusText, headers });
  };
}
