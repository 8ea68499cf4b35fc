import { type Hook, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { HTTP_STATUS, isDataVisorError, type ErrorCode } from '../services/errors.js';
import type { Logger } from '../services/logger.js';

/**
 * The one place REST maps failures to responses: a DataVisorError answers
 * `{"error":{"code","message"}}` with HTTP_STATUS[code]; a framework HTTPException (body too large,
 * malformed JSON, wrong media type) keeps its status; anything else is logged once and becomes
 * 500 INTERNAL "Unexpected error." so no internals leak to the client.
 */

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'NOT_FOUND' }),
      message: z.string().openapi({ example: 'dataset "abc" does not exist' }),
    }),
  })
  .openapi('Error');

const ERROR_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

export function errorResponse(code: ErrorCode, message: string, status: number = HTTP_STATUS[code]): Response {
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: ERROR_HEADERS });
}

/**
 * 405 for a method `path` does not answer, with the `Allow` header RFC 9110 §15.5.6 requires. The
 * code is BAD_USER_INPUT, as for the other refusals of a request's form (415).
 */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): Response {
  const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : allowed.join('');
  const res = errorResponse('BAD_USER_INPUT', `${method} is not allowed on ${path}: use ${list}`, 405);
  res.headers.set('allow', allowed.join(', '));
  return res;
}

const EXCEPTION_MESSAGES: Record<number, string> = {
  413: 'The request body is too large',
  415: 'The request body must be JSON (Content-Type: application/json)',
};

/** `log` is the request's child logger, so the line carries the request id. */
export function toErrorResponse(err: unknown, log: Logger): Response {
  if (isDataVisorError(err)) {
    if (HTTP_STATUS[err.code] >= 500) log.error({ err }, err.message);
    return errorResponse(err.code, err.message);
  }
  if (err instanceof HTTPException) {
    const code: ErrorCode = err.status === 413 ? 'PAYLOAD_TOO_LARGE' : err.status < 500 ? 'BAD_USER_INPUT' : 'INTERNAL';
    if (code === 'INTERNAL') log.error({ err }, 'unexpected error');
    return errorResponse(code, code === 'INTERNAL' ? 'Unexpected error.' : (EXCEPTION_MESSAGES[err.status] ?? err.message), err.status);
  }
  log.error({ err }, 'unexpected error');
  return errorResponse('INTERNAL', 'Unexpected error.');
}

/** OpenAPI `responses` entries for the error statuses a route can answer. */
export function errorResponses(...statuses: number[]) {
  const out: Record<number, { description: string; content: { 'application/json': { schema: typeof ErrorBodySchema } } }> = {};
  for (const s of statuses) out[s] = { description: STATUS_TEXT[s] ?? 'Error', content: { 'application/json': { schema: ErrorBodySchema } } };
  return out;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid request (BAD_USER_INPUT)',
  401: 'No valid API token or image URL signature (UNAUTHENTICATED)',
  403: 'Forbidden (FORBIDDEN): a path outside the image folder, or an image URL signature that is tampered, expired or for another image',
  404: 'Not found (NOT_FOUND, FILE_NOT_FOUND)',
  413: 'Request body too large (PAYLOAD_TOO_LARGE)',
  415: 'Request body is not JSON (BAD_USER_INPUT)',
  416: 'Range Not Satisfiable (BAD_USER_INPUT): the Range of an original starts past its end; Content-Range gives the size',
  422: 'The image cannot be decoded (UNPROCESSABLE_IMAGE)',
};

// ---------------------------------------------------------------------------------------------
// Validation failures

const WHERE: Record<string, string> = { query: 'query parameter', param: 'path parameter', json: 'body field', header: 'header' };

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
}

/**
 * The defaultHook of every router: a request that fails its schema answers 400 BAD_USER_INPUT
 * naming each parameter at fault, why, and the value received.
 */
export const validationHook: Hook<unknown, any, any, any> = async (result, c) => {
  if (result.success) return undefined;
  const raw = await rawValues(c, result.target);
  const issues = (result.error as { issues: readonly Issue[] }).issues;
  const messages = issues.map((issue) => describeIssue(result.target, issue, raw));
  return errorResponse('BAD_USER_INPUT', messages.join('; ') || 'Invalid request');
};

async function rawValues(c: Context, target: string): Promise<unknown> {
  switch (target) {
    case 'query':
      return c.req.query();
    case 'param':
      return c.req.param();
    case 'json':
      // Already parsed by the validator; Hono caches the body, so this reads nothing again.
      return c.req.json().catch(() => undefined);
    default:
      return undefined;
  }
}

function describeIssue(target: string, issue: Issue, raw: unknown): string {
  const where = WHERE[target] ?? target;
  if (issue.path.length === 0) {
    if (target === 'json' && issue.code === 'unrecognized_keys') return `The request body ${issue.message}`;
    return target === 'json' ? 'The request body must be a JSON object' : `${where}: ${issue.message}`;
  }
  const name = issue.path.map(String).join('.');
  let value: unknown = raw;
  for (const key of issue.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  if (value === undefined && issue.code === 'invalid_type') return `${where} "${name}" is required`;
  const got = value === undefined ? '' : ` (got ${JSON.stringify(value)})`;
  return `${where} "${name}" ${issue.message}${got}`;
}
