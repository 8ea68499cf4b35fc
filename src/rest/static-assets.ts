import type { Hono } from 'hono';
import { encode, negotiate, varyOnEncoding, type Encoding } from './compression.js';
import { newRouter } from './router.js';

/** A file served as it is at a URL that names its version, so it never changes. */
export interface StaticAsset {
  /** The URL's path, e.g. /graphql/assets/5.24.1/graphiql.js. */
  path: string;
  type: string;
  /** The bytes, asked for on the first request (GraphiQL's are 9 MB a server may never serve). */
  load(): Uint8Array<ArrayBuffer>;
}

/** A year, and `immutable`: the URL changes with the content, so a browser never needs to ask again. */
const CACHE_CONTROL = 'public, max-age=31536000, immutable';

/**
 * Serves `assets` (GET and HEAD) with long-lived caching, compressed per Accept-Encoding once per
 * encoding, on first request, and kept: GraphiQL's script is 5 MB, which brotli takes ~1 s to pack.
 */
export function staticAssets(assets: readonly StaticAsset[]): Hono<any> {
  const router = newRouter();
  for (const asset of assets) {
    let plain: Uint8Array<ArrayBuffer> | undefined;
    const packed = new Map<Encoding, Promise<Buffer>>();
    const bytes = (encoding: Encoding | null) => {
      plain ??= asset.load();
      if (!encoding) return plain;
      let variant = packed.get(encoding);
      if (!variant) packed.set(encoding, (variant = encode(plain, encoding, 'static')));
      return variant;
    };
    router.get(asset.path, async (c) => {
      varyOnEncoding(c);
      const encoding = negotiate(c.req.header('accept-encoding'));
      const body = await bytes(encoding);
      const headers: Record<string, string> = { 'content-type': asset.type, 'content-length': String(body.byteLength), 'cache-control': CACHE_CONTROL };
      if (encoding) headers['content-encoding'] = encoding;
      return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers });
    });
  }
  return router;
}
