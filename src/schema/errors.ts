import { GraphQLError } from 'graphql';
import type { YogaLogger } from 'graphql-yoga';
import { DataVisorError, HTTP_STATUS, isDataVisorError, type ErrorCode } from '../services/errors.js';
import type { Logger } from '../services/logger.js';

/**
 * The GraphQL edge of the error family (docs/graphql.md, "Errors"). A DataVisorError becomes a
 * GraphQLError with `extensions.code` and `http.status`; anything else is logged once and becomes
 * "Unexpected error." with code INTERNAL.
 *
 * Ingestion's file-level codes are folded into the contract's codes, so a client handles one
 * short list; the service's own code stays in `extensions.reason`:
 * FILE_NOT_FOUND → NOT_FOUND, INVALID_JSON / INVALID_COCO → INGEST_FAILED.
 */
const GRAPHQL_CODE: Partial<Record<ErrorCode, string>> = {
  FILE_NOT_FOUND: 'NOT_FOUND',
  INVALID_JSON: 'INGEST_FAILED',
  INVALID_COCO: 'INGEST_FAILED',
};

export const UNEXPECTED_MESSAGE = 'Unexpected error.';

/** The DataVisorError an error is, or wraps (graphql-js wraps resolver errors in a GraphQLError). */
function dataVisorErrorOf(error: unknown): DataVisorError | null {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = (e as GraphQLError).originalError, depth++) {
    if (isDataVisorError(e)) return e;
    if (!(e instanceof GraphQLError)) break;
  }
  return null;
}

/** A GraphQLError that graphql-js or a guard made itself (syntax, validation, variables, limits). */
function isOwnGraphQLError(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && (error.originalError == null || isOwnGraphQLError(error.originalError));
}

/**
 * A variable graphql-js refused while coercing it (an enum value it does not know, a wrong type):
 * the client's input, named in the message, so BAD_USER_INPUT as the resolvers' own checks. graphql-js
 * gives its errors no code; these are the ones whose message starts `Variable "$name"`.
 */
function isVariableError(error: GraphQLError): boolean {
  return error.extensions?.code === undefined && error.message.startsWith('Variable "$');
}

export function isExpectedError(error: unknown): boolean {
  return dataVisorErrorOf(error) !== null || isOwnGraphQLError(error);
}

export function maskError(error: unknown): Error {
  const located = error instanceof GraphQLError ? error : null;
  const where = { nodes: located?.nodes, source: located?.source, positions: located?.positions, path: located?.path };
  const dv = dataVisorErrorOf(error);
  if (dv) {
    const code = GRAPHQL_CODE[dv.code] ?? dv.code;
    return new GraphQLError(dv.message, {
      ...where,
      originalError: dv,
      extensions: { code, ...(code !== dv.code ? { reason: dv.code } : {}), http: { status: HTTP_STATUS[dv.code] } },
    });
  }
  if (isOwnGraphQLError(error)) return isVariableError(error) ? new GraphQLError(error.message, { ...where, extensions: { ...(error.extensions ?? {}), code: 'BAD_USER_INPUT', http: { status: 400 } } }) : error;
  return new GraphQLError(UNEXPECTED_MESSAGE, { ...where, extensions: { code: 'INTERNAL', http: { status: 500 } } });
}

/** A service `error` event (the stream's last) as the error it stands for. */
export function ingestEventError(code: string | undefined, message: string): DataVisorError {
  const known = code !== undefined && Object.hasOwn(HTTP_STATUS, code);
  return new DataVisorError(known ? (code as ErrorCode) : 'INGEST_FAILED', message);
}

/**
 * yoga's logger on top of ours. yoga logs every error its mask replaced; expected ones are
 * answers, not incidents, so only the unexpected reach the error log (once each).
 */
export function yogaLogger(log: Logger): YogaLogger {
  return {
    debug: (...args: unknown[]) => log.debug({ graphql: args.map(String) }, 'graphql'),
    info: (...args: unknown[]) => log.info({ graphql: args.map(String) }, 'graphql'),
    warn: (...args: unknown[]) => log.warn({ graphql: args.map(String) }, 'graphql'),
    error: (...args: unknown[]) => {
      const err = args.find((a) => a instanceof Error);
      if (err && isExpectedError(err)) return;
      const original = err instanceof GraphQLError && err.originalError ? err.originalError : err;
      log.error({ err: original ?? args.map(String) }, 'graphql: unexpected error');
    },
  };
}
