import { useGraphQlJit } from '@envelop/graphql-jit';
import { getOperationAST } from 'graphql';
import { createYoga } from 'graphql-yoga';
import type { DataVisor } from '../services/app.js';
import { createContext, type GraphQLContext } from './context.js';
import { maskError, yogaLogger } from './errors.js';
import { graphiqlOptions } from './graphiql.js';
import { renderGraphiQLPage } from './graphiql-page.js';
import { useAbuseGuards } from './guards.js';
import { schema } from './index.js';
import { useGraphQLSSE } from './sse.js';
import { useCrossSiteGuard, usePartialResultStatus } from './transport.js';

export const GRAPHQL_PATH = '/graphql';
export const STREAM_PATH = '/graphql/stream';

/**
 * The GraphQL endpoint (/graphql and /graphql/stream) as a fetch handler that the HTTP server
 * mounts for GET and POST (and PUT/DELETE on /graphql/stream for graphql-sse's single-connection
 * mode); it answers the other methods itself (405). GraphiQL answers a browser's GET /graphql, from assets bundled in
 * @graphql-yoga/render-graphiql and served under /graphql/assets/ (graphiql-page.ts): no CDN, so
 * it works on an air-gapped server.
 */
export function createGraphQLHandler(dv: DataVisor): (request: Request) => Promise<Response> {
  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: ({ request }) => createContext(dv, request),
    maskedErrors: { maskError: (error) => maskError(error) },
    logging: yogaLogger(dv.log),
    graphiql: graphiqlOptions(dv),
    // A small page that links GraphiQL's bundle (graphiql-page.ts), which the server mounts.
    renderGraphiQL: renderGraphiQLPage,
    landingPage: false,
    // CORS is the HTTP server's (one policy for REST and GraphQL); uploads are not part of the API.
    cors: false,
    multipart: false,
    plugins: [
      // Before parsing: refuse requests a foreign page could send without a CORS preflight.
      useCrossSiteGuard([GRAPHQL_PATH, STREAM_PATH]),
      // Transport: graphql-sse's protocol at /graphql/stream, through the same envelop as /graphql.
      useGraphQLSSE(STREAM_PATH),
      // Validation: depth, cost, aliases, directives and tokens.
      ...useAbuseGuards({ production: process.env.NODE_ENV === 'production' }),
      // Execution: each distinct query compiled to a function once (about 2 ms off a page of 50
      // samples with their annotations, the same resolvers and errors). Queries only: graphql-jit
      // 0.8 hands a subscription's resolver wrong arguments when a variable is named differently
      // from its argument, and mutations are rare enough not to need it.
      useGraphQlJit({}, { enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation === 'query' }),
      // Result: partial data is a 200.
      usePartialResultStatus(),
    ],
  });
  return async (request) => yoga.fetch(request);
}
