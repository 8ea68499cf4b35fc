/**
 * One error family for every service. Each edge (REST, GraphQL, SSE, CLI) maps `code` to its own
 * shape in one place; anything that is not a DataVisorError is unexpected and becomes INTERNAL.
 */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'UNAUTHENTICATED'
  | 'CONFLICT'
  | 'FAILED_PRECONDITION'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNPROCESSABLE_IMAGE'
  | 'INVALID_JSON'
  | 'INVALID_COCO'
  | 'INVALID_RESULTS'
  | 'FILE_NOT_FOUND'
  | 'INGEST_CANCELLED'
  | 'INGEST_FAILED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  FORBIDDEN: 403,
  UNAUTHENTICATED: 401,
  CONFLICT: 409,
  FAILED_PRECONDITION: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNPROCESSABLE_IMAGE: 422,
  INVALID_JSON: 422,
  INVALID_COCO: 422,
  INVALID_RESULTS: 422,
  FILE_NOT_FOUND: 404,
  INGEST_CANCELLED: 499,
  INGEST_FAILED: 500,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

export class DataVisorError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DataVisorError';
  }
}

export class NotFoundError extends DataVisorError {
  constructor(what: string, id: string | number, options?: ErrorOptions) {
    super('NOT_FOUND', `${what} ${JSON.stringify(String(id))} does not exist`, options);
  }
}

export class BadInputError extends DataVisorError {
  constructor(message: string, options?: ErrorOptions) {
    super('BAD_USER_INPUT', message, options);
  }
}

export class ForbiddenError extends DataVisorError {
  constructor(message: string, options?: ErrorOptions) {
    super('FORBIDDEN', message, options);
  }
}

export function isDataVisorError(e: unknown): e is DataVisorError {
  return e instanceof DataVisorError;
}
