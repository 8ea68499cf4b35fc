import { getOperationAST, GraphQLError, parse } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/**
 * HTTP-level rules of the GraphQL endpoints.
 *
 * Cross-site requests: a page on another site can send "simple" requests (form posts, GETs)
 * without asking the browser first. So operations are only accepted as JSON (or
 * application/graphql) POSTs, which a browser sends cross-site only after a CORS preflight, and a
 * subscription (ingestDataset writes a dataset) is never started by a GET. CORS itself is the
 * HTTP server's, shared with REST; this handler adds no CORS headers.
 */
const OPERATION_BODY_TYPES = ['application/json', 'application/graphql', 'application/graphql+json'];

function refuse(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

function isSubscription(query: string): boolean {
  try {
    return getOperationAST(parse(query))?.operation === 'subscription';
  } catch {
    // Not parseable: GraphQL answers that itself, with the syntax error.
    return false;
  }
}

export function useCrossSiteGuard(paths: readonly string[]): Plugin {
  return {
    onRequest({ request, url, endResponse }) {
      if (!paths.includes(url.pathname)) return;
      if (request.method === 'POST') {
        const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (!OPERATION_BODY_TYPES.includes(type)) {
          endResponse(refuse(415, 'BAD_USER_INPUT', `Send GraphQL operations as application/json (got ${type ? JSON.stringify(type) : 'no content-type'})`));
        }
      } else if (request.method === 'GET') {
        const query = url.searchParams.get('query');
        if (query && isSubscription(query)) {
          endResponse(refuse(405, 'BAD_USER_INPUT', 'Subscriptions are not started by GET; POST them (graphql-sse does)'));
        }
      }
    },
  };
}

/**
 * yoga answers with the largest `http.status` among the errors. That suits a request that
 * produced no data (a bad argument: 400, an unknown dataset: 404), but a partial result, such as
 * `dataset(id:)` answering null next to other fields, is a 200 by the GraphQL-over-HTTP spec, and
 * clients such as Apollo drop the data of a non-2xx answer.
 */
export function usePartialResultStatus(): Plugin {
  return {
    onExecutionResult({ result, setResult }) {
      if (!result || Array.isArray(result) || isAsyncIterable(result)) return;
      if (result.data == null || !result.errors?.some((e) => e.extensions?.http)) return;
      setResult({ ...result, errors: result.errors.map(withoutHttpStatus) });
    },
  };
}

/** `extensions.http` steers the HTTP answer and is not for clients; yoga drops it from JSON, graphql-sse does not. */
export function withoutHttpExtensions<T extends { errors?: readonly GraphQLError[] }>(result: T): T {
  return result.errors?.some((e) => e.extensions?.http) ? { ...result, errors: result.errors.map(withoutHttpStatus) } : result;
}

function withoutHttpStatus(e: GraphQLError): GraphQLError {
  if (!e.extensions?.http) return e;
  const { http: _http, ...extensions } = e.extensions;
  return new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, path: e.path, originalError: e.originalError, extensions });
}
