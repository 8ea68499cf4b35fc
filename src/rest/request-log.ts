import { randomUUID } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../services/logger.js';
import type { AppEnv } from './router.js';

/** A client's own id is kept only if it is short and plain, so it cannot forge log lines or headers. */
const CLIENT_ID = /^[\w.:@-]{1,128}$/;

/**
 * First middleware of every request: takes the client's `x-request-id` (or makes one), hands
 * handlers a child logger bound to it, echoes it in the response, and writes one JSON line per
 * request with method, path, status and duration. Hono turns a thrown error into its onError
 * response before this middleware resumes, so failed requests get their id and line too.
 *
 * For a streamed response (SSE) the line is written when the headers go out; the stream logs its
 * own end through the same child logger.
 */
export function requestLog(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const given = c.req.header('x-request-id');
    const id = given !== undefined && CLIENT_ID.test(given) ? given : randomUUID();
    const child = log.child({ req_id: id });
    c.set('log', child);
    c.set('requestId', id);
    // On Node the id goes straight onto the outgoing response, so every answer carries it (streams,
    // errors, GraphQL's) without turning a response's plain headers into a Headers object, which
    // costs the hot thumbnail route a few percent of its throughput. Elsewhere (app.request) it is
    // added afterwards.
    const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
    outgoing?.setHeader('x-request-id', id);
    await next();
    if (!outgoing) c.res.headers.set('x-request-id', id);
    child.info(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - started) * 100) / 100 },
      'request',
    );
  };
}
