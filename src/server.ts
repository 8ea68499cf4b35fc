import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { shouldRenderGraphiQL } from 'graphql-yoga';
import { bodyLimit } from 'hono/body-limit';
import { corsPolicy, CROP_ROUTE, EXPORT_ROUTE, IMAGE_ROUTE, requireExportAccess, requireImageAccess, requireToken } from './rest/auth.js';
import { compression } from './rest/compression.js';
import { datasetRoutes } from './rest/datasets.js';
import { errorResponse, methodNotAllowed, toErrorResponse } from './rest/errors.js';
import { healthRoutes } from './rest/health.js';
import { imageRoutes } from './rest/images.js';
import { ingestRoutes } from './rest/ingest.js';
import { predictionRoutes } from './rest/predictions.js';
import { evaluationRoutes } from './rest/evaluations.js';
import { exportRoutes } from './rest/export.js';
import { requestLog } from './rest/request-log.js';
import { newApp } from './rest/router.js';
import { objectRoutes } from './rest/objects.js';
import { sampleRoutes } from './rest/samples.js';
import { aggregateRoutes } from './rest/aggregate.js';
import { tagRoutes } from './rest/tags.js';
import { viewRoutes } from './rest/views.js';
import { staticAssets } from './rest/static-assets.js';
import { GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_PREFIX } from './schema/graphiql-page.js';
import { createGraphQLHandler, GRAPHQL_PATH, STREAM_PATH } from './schema/handler.js';
import type { DataVisor } from './services/app.js';

export interface ServerOptions {
  /** Largest request body accepted (413 above). */
  maxBodyBytes?: number;
  /** Interval of SSE heartbeat comments. */
  heartbeatMs?: number;
  /** How long close() waits for open requests (an ingest stream ending) before cutting them. */
  closeGraceMs?: number;
}

export interface RunningServer {
  /** Where the server listens, e.g. http://127.0.0.1:8000 (the real port when settings.port is 0). */
  url: string;
  port: number;
  server: Server;
  /** Stops accepting, lets open requests finish, closes keep-alive connections. */
  close(): Promise<void>;
}

/** Ingest requests are a few paths; GraphQL documents are small. Anything bigger is not ours. */
const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
const VERSION = readVersion();

/**
 * The HTTP application: REST routes (src/rest, one file per resource) and the GraphQL endpoint.
 * Middleware, in order: request id + one log line per request; compression of answers (not of
 * images and sample pages, which negotiate it themselves); CORS (DATAVISOR_CORS_ORIGINS),
 * which answers preflights before any token is asked for; the token (DATAVISOR_API_TOKEN), or a
 * signed URL on the image route; body size cap on requests with a body; then the routes, whose
 * zod schemas validate input and also produce /openapi.json. CORS and the token check are only
 * installed when configured: an open server runs exactly the middleware it ran before.
 */
export function createServer(dv: DataVisor, opts: ServerOptions = {}) {
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = newApp();
  const { corsOrigins } = dv.settings;

  app.use(requestLog(dv.log));
  // Images are never compressed (already compressed; originals answer byte ranges); sample pages
  // and GraphiQL's files keep their compressed bytes and negotiate themselves; exports are
  // compressed as they stream (the middleware reads a body whole).
  app.use(compression((path) => path.startsWith('/images/') || path === '/samples' || path.startsWith(GRAPHIQL_ASSETS_PREFIX) || /^\/datasets\/[^/]+\/export$/.test(path)));
  if (corsOrigins.length > 0) {
    app.use(corsPolicy(corsOrigins));
    if (corsOrigins[0] === '*' && !dv.access.enabled) {
      dv.log.warn('DATAVISOR_CORS_ORIGINS=* without DATAVISOR_API_TOKEN: any web page a user of this server visits can read and change its datasets');
    }
  }
  if (dv.access.enabled) {
    app.use(
      requireToken(dv.access, {
        // GraphiQL's page is open because a browser cannot add a header to a navigation; it names
        // no dataset then (schema/graphiql.ts) and every query it sends needs the token, which its
        // Headers tab holds. yoga's own test decides, so an exempted request is always the page.
        isOpen: (c) =>
          c.req.path === '/health' ||
          (c.req.path === GRAPHQL_PATH && shouldRenderGraphiQL(c.req.raw)) ||
          // GraphiQL's script and styles: public library code, loaded by tags that cannot send a header.
          c.req.path.startsWith(GRAPHIQL_ASSETS_PREFIX),
      }),
    );
    app.use(IMAGE_ROUTE, requireImageAccess(dv.access));
    app.use(CROP_ROUTE, requireImageAccess(dv.access, 'object'));
    app.use(EXPORT_ROUTE, requireExportAccess(dv.access));
    app.openAPIRegistry.registerComponent('securitySchemes', 'bearerToken', {
      type: 'http',
      scheme: 'bearer',
      description: 'DATAVISOR_API_TOKEN. /images and /datasets/{id}/export also accept the signed URLs (`exp`, `sig`) the API hands out.',
    });
  }
  app.on(
    ['POST', 'PUT', 'PATCH'],
    '*',
    bodyLimit({ maxSize: maxBody, onError: () => errorResponse('PAYLOAD_TOO_LARGE', `The request body is larger than ${maxBody} bytes`) }),
  );

  app.route('/', healthRoutes());
  app.route('/', ingestRoutes(dv, { heartbeatMs: opts.heartbeatMs }));
  app.route('/', datasetRoutes(dv));
  app.route('/', predictionRoutes(dv, { heartbeatMs: opts.heartbeatMs }));
  app.route('/', evaluationRoutes(dv));
  app.route('/', exportRoutes(dv));
  app.route('/', sampleRoutes(dv));
  app.route('/', objectRoutes(dv));
  app.route('/', aggregateRoutes(dv));
  app.route('/', tagRoutes(dv));
  app.route('/', viewRoutes(dv));
  app.route('/', imageRoutes(dv));

  app.route('/', staticAssets(GRAPHIQL_ASSETS));

  const graphql = createGraphQLHandler(dv);
  app.all(GRAPHQL_PATH, graphqlRoute(graphql, GRAPHQL_PATH, ['GET', 'POST']));
  // graphql-sse's single-connection mode also reserves (PUT) and closes (DELETE) a stream.
  app.all(STREAM_PATH, graphqlRoute(graphql, STREAM_PATH, ['GET', 'POST', 'PUT', 'DELETE']));

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'DataVisor REST API',
      version: VERSION,
      description: 'Errors answer `{"error":{"code","message"}}`. GraphQL is served at /graphql (not described here).',
    },
    // /health declares `security: []` itself: it is open either way.
    ...(dv.access.enabled ? { security: [{ bearerToken: [] }] } : {}),
  });

  app.notFound((c) => errorResponse('NOT_FOUND', `No route ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => toErrorResponse(err, c.get('log') ?? dv.log));
  return app;
}

/**
 * Hands the methods of `allowed` to GraphQL and answers the rest here: OPTIONS with 204 and
 * `Allow` (preflights never get here: the CORS middleware answers them), anything else 405. Hono
 * runs GET handlers for HEAD and then copies their answer without its body, which turned yoga's own
 * 405 for HEAD into a 500 with a garbled header: HEAD is refused before yoga sees it.
 */
function graphqlRoute(graphql: (request: Request) => Promise<Response>, path: string, allowed: readonly string[]) {
  return (c: { req: { raw: Request; method: string } }) => {
    const { method } = c.req;
    if (allowed.includes(method)) return graphql(c.req.raw);
    if (method === 'OPTIONS') return new Response(null, { status: 204, headers: { allow: allowed.join(', ') } });
    return methodNotAllowed(method, path, allowed);
  };
}

/** Serves createServer(dv) on `dv.settings.host:port` (port 0: any free port). */
export async function startServer(dv: DataVisor, opts: ServerOptions = {}): Promise<RunningServer> {
  const app = createServer(dv, opts);
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  const { host, port } = dv.settings;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(host)}:${actual}`;
  dv.log.info({ url }, 'listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    port: actual,
    server,
    close: () => (closing ??= closeServer(server, opts.closeGraceMs ?? 10_000)),
  };
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  // A busy keep-alive connection (a client under load sends its next request as soon as it has an
  // answer) is never idle: answers say `Connection: close` from now on, and Node closes each
  // connection once it has answered, instead of at the end of the grace.
  server.prependListener('request', (_req, res) => res.setHeader('connection', 'close'));
  return new Promise<void>((resolve, reject) => {
    // A connection busy now (an SSE stream sending its last event) turns idle later; keep sweeping
    // so keep-alive sockets do not hold the close open until their own timeout.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close((err) => {
      clearInterval(sweep);
      clearTimeout(force);
      if (err) reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

/** A wildcard address is not somewhere to browse to; IPv6 literals need brackets in a URL. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

function readVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    // Only the document's info.version is affected.
    return '0.0.0';
  }
}
