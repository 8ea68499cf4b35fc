import type { DataVisor } from '../services/app.js';

/**
 * The GraphQL endpoint (/graphql and /graphql/stream) as a fetch handler that the HTTP server
 * mounts. Placeholder until the GraphQL issue lands: it answers 501.
 */
export function createGraphQLHandler(_dv: DataVisor): (request: Request) => Promise<Response> {
  return async () =>
    new Response(JSON.stringify({ error: { code: 'NOT_IMPLEMENTED', message: 'GraphQL is not built yet' } }), {
      status: 501,
      headers: { 'content-type': 'application/json' },
    });
}
