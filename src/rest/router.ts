import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Logger } from '../services/logger.js';
import { validationHook } from './errors.js';
import { MethodRouter } from './method-router.js';

/** What the request middleware (request-log.ts) hands every handler. */
export interface AppEnv {
  Variables: {
    /** Child of `dv.log` carrying `req_id`: log through it so every line names its request. */
    log: Logger;
    requestId: string;
  };
}

/**
 * A router whose routes validate their input with the same zod schemas that describe them in
 * /openapi.json; a validation failure answers 400 BAD_USER_INPUT before the handler runs.
 */
export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

/** The application: the routers above are mounted on it, and it alone matches requests. */
export function newApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook, router: new MethodRouter() });
}

/**
 * The origin the client reached us at (scheme, host and port of the request URL, which the Node
 * adapter builds from the Host header), so the URLs we hand out work as they are.
 */
export function requestOrigin(url: string): string {
  // "http://host:port/path…": the origin ends at the first "/" after the scheme.
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  return slash === -1 ? url : url.slice(0, slash);
}

/**
 * An integer query parameter. Only plain decimal text is turned into a number, so "", "0x10" or
 * "1e3" fail with "must be a number" instead of being coerced into something the client did not mean.
 */
export function queryInt(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*[-+]?\d+(\.\d*)?\s*$/.test(v) ? Number(v) : v),
    z.number({ error: 'must be a number' }).int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
  );
}

/** A finite number query parameter. */
export function queryNumber() {
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v) ? Number(v) : v),
    z.number({ error: 'must be a number' }).finite('must be a finite number'),
  );
}

/** The `{id}` path parameter of a dataset's routes. */
export const DatasetIdParams = z.object({
  id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'k3v7q2mzx4a5b6c7' }),
});

/** A JSON response of a route definition. */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** A boolean query parameter: `true`/`1` or `false`/`0`. */
export function queryBool() {
  return z.preprocess(
    (v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v),
    z.boolean({ error: 'must be true or false' }),
  );
}

/**
 * If-None-Match per RFC 9110 §13.1.2: `*` or a list of entity tags, compared weakly (a `W/` prefix
 * is ignored), since a 304 only tells the client that what it holds is still good.
 */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  for (const part of header.split(',')) {
    const tag = part.trim();
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === etag) return true;
  }
  return false;
}
