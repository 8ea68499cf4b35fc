import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { AccessService } from '../services/access.js';
import { errorResponse } from './errors.js';
import type { AppEnv } from './router.js';

/**
 * The HTTP side of DATAVISOR_API_TOKEN and DATAVISOR_CORS_ORIGINS (docs/security.md). The server
 * installs these only when configured, so an open server pays nothing for them.
 */

/** The image route's path, for the middleware that accepts signed URLs there. */
export const IMAGE_ROUTE = '/images/:dataset_id/:sample_id';
/** The object crop route's path (rest/images.ts), which accepts signed URLs too. */
export const CROP_ROUTE = '/images/:dataset_id/:sample_id/objects/:ord';
/** What IMAGE_ROUTE and CROP_ROUTE match; the token check leaves those requests to requireImageAccess. */
const IMAGE_PATH = /^\/images\/[^/]+\/[^/]+(\/objects\/[^/]+)?$/;
/** The export download's route and path, left by the token check to requireExportAccess. */
export const EXPORT_ROUTE = '/datasets/:id/export';
const EXPORT_PATH = /^\/datasets\/[^/]+\/export$/;

/** Missing and wrong tokens get the same status and header; only the message differs. */
const WWW_AUTHENTICATE = 'Bearer realm="DataVisor"';

function unauthenticated(message: string): Response {
  const res = errorResponse('UNAUTHENTICATED', message);
  res.headers.set('www-authenticate', WWW_AUTHENTICATE);
  return res;
}

function tokenRefusal(header: string | undefined): Response {
  return unauthenticated(
    header ? 'The bearer token is not valid' : 'This server requires an API token: send "Authorization: Bearer <token>"',
  );
}

export interface RequireTokenOptions {
  /** Requests answered without the token (/health, GraphiQL's page). */
  isOpen(c: Context<AppEnv>): boolean;
}

/**
 * Every request needs `Authorization: Bearer <token>` (compared in constant time by
 * AccessService), except those `isOpen` names and the image route, whose own middleware
 * (requireImageAccess) also takes a signed URL. 401 UNAUTHENTICATED with `WWW-Authenticate`
 * otherwise, whether the header is missing or wrong.
 */
export function requireToken(access: AccessService, opts: RequireTokenOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (IMAGE_PATH.test(c.req.path) || EXPORT_PATH.test(c.req.path) || opts.isOpen(c)) return next();
    const header = c.req.header('authorization');
    if (!access.checkAuthorization(header)) return tokenRefusal(header);
    return next();
  };
}

/**
 * The image route answers the bearer token, or a signed URL (`exp`, `sig`) made by the API for
 * exactly this dataset, sample and size, since a browser's `<img>` cannot send a header. It runs
 * as middleware of the image route's own pattern, so it sees the path parameters exactly as the
 * handler will. A URL without a signature is a 401 like any request without the token; a
 * signature that is tampered, expired, or made for another image is a 403.
 *
 * This is on the hot thumbnail path: the bearer check is one SHA-256, the signature one HMAC.
 */
export function requireImageAccess(access: AccessService, route: 'sample' | 'object' = 'sample'): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header !== undefined && access.checkAuthorization(header)) return next();
    const sig = c.req.query('sig');
    const exp = c.req.query('exp');
    if (sig === undefined && exp === undefined) {
      return header === undefined
        ? unauthenticated('This image URL is not signed: use the URL the API handed out, or send "Authorization: Bearer <token>"')
        : tokenRefusal(header);
    }
    // The same readings the handler serves: the first `size` (default medium) and the decoded path parameters.
    const size = c.req.query('size') ?? 'medium';
    // A crop signs `objects/<ord>` where a thumbnail signs its sample id (an integer): neither opens the other.
    const subject = route === 'object' ? `objects/${c.req.param('ord')!}` : c.req.param('sample_id')!;
    const check = access.verifyImageSignature(c.req.param('dataset_id')!, subject, size, exp, sig);
    if (check === 'ok') return next();
    if (check === 'expired') {
      return errorResponse('FORBIDDEN', `This image URL expired at ${new Date(Number(exp) * 1000).toISOString()}; ask the API for a fresh one`);
    }
    return errorResponse('FORBIDDEN', 'The signature of this image URL is not valid for this image');
  };
}

/**
 * The export route answers the bearer token, or a signed URL as GraphQL's `exportUrl` hands out:
 * `exp` and `sig` last in the query, signed over the path and every parameter before them, so a
 * link opened in a browser downloads without the token and no parameter can be changed.
 */
export function requireExportAccess(access: AccessService): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header !== undefined && access.checkAuthorization(header)) return next();
    const url = c.req.url;
    const at = url.indexOf('/', url.indexOf('//') + 2);
    const pathAndQuery = at === -1 ? '/' : url.slice(at);
    const signed = /^(.*?)[?&]exp=([^&]*)&sig=([^&]*)$/.exec(pathAndQuery);
    if (!signed) {
      return header === undefined
        ? unauthenticated('This export URL is not signed: use the URL GraphQL\'s exportUrl hands out, or send "Authorization: Bearer <token>"')
        : tokenRefusal(header);
    }
    const [, base, exp, sig] = signed;
    const check = access.verifyExportSignature(base!, exp, sig);
    if (check === 'ok') return next();
    if (check === 'expired') return errorResponse('FORBIDDEN', `This export URL expired at ${new Date(Number(exp) * 1000).toISOString()}; ask the API for a fresh one`);
    return errorResponse('FORBIDDEN', 'The signature of this export URL is not valid for it (was a parameter changed?)');
  };
}

const EXPOSE_HEADERS = 'ETag, X-Request-Id, WWW-Authenticate, Content-Length';

/**
 * CORS for DATAVISOR_CORS_ORIGINS (`*` or a list). Preflights are answered by hono/cors here,
 * before the token check: a browser never sends credentials on a preflight. No cookies are used,
 * so credentials mode stays off; pages send the token themselves in `Authorization`.
 *
 * The headers of actual requests are written by this middleware rather than by hono/cors, which
 * touches `c.res` on every request: Hono then copies the handler's Response (twice, with the
 * `Vary` it appends), which halved the cached-thumbnail route's throughput, with or without an
 * `Origin` header. As in request-log.ts, on Node they go straight onto the outgoing response.
 */
export function corsPolicy(origins: readonly string[]): MiddlewareHandler<AppEnv> {
  const any = origins[0] === '*';
  const allowed = new Set(origins);
  const preflight = cors({
    origin: any ? '*' : [...origins],
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
    // content-type: JSON bodies (ingest, GraphQL); accept: graphql-sse and GraphQL-over-HTTP
    // clients send non-simple values; if-none-match: revalidating from script; x-request-id:
    // correlating a page's calls with server logs; the last is graphql-sse's single-connection token.
    allowHeaders: ['Authorization', 'Content-Type', 'Accept', 'If-None-Match', 'X-Request-Id', 'X-GraphQL-Event-Stream-Token'],
    exposeHeaders: EXPOSE_HEADERS.split(', '),
    // Browsers cap this anyway (Chromium: 2 h); ten minutes keeps a page from preflighting each call.
    maxAge: 600,
  });
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') return preflight(c, next);
    const origin = c.req.header('origin');
    const headers: [string, string][] = [];
    // The answer depends on Origin unless every origin gets the same `*`: caches must key on it.
    if (!any) headers.push(['vary', 'Origin']);
    if (origin !== undefined && (any || allowed.has(origin))) {
      headers.push(['access-control-allow-origin', any ? '*' : origin], ['access-control-expose-headers', EXPOSE_HEADERS]);
    }
    const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
    if (outgoing) for (const [name, value] of headers) outgoing.setHeader(name, value);
    await next();
    if (!outgoing) for (const [name, value] of headers) c.res.headers.append(name, value);
  };
}
