import { getOperationAST, GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/fetch';
import { isAsyncIterable, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { withoutHttpExtensions } from './transport.js';

/**
 * The graphql-sse protocol (single-connection and distinct-connections modes) at `endpoint`,
 * served by graphql-sse's own handler. Each operation runs through yoga's envelop, so the depth
 * and cost guards, the error mask and the context are the same as on /graphql.
 */
export function useGraphQLSSE(endpoint: string): Plugin<YogaInitialContext> {
  let handler!: (request: Request) => Promise<Response>;
  return {
    onYogaInit({ yoga }) {
      handler = createHandler(
        {
          onSubscribe: async (req, params) => {
            const enveloped = yoga.getEnveloped({ request: req.raw, params });
            let document;
            try {
              document = enveloped.parse(params.query);
            } catch (e) {
              // Syntax errors and the token limit: the client's mistake, answered as such.
              if (e instanceof GraphQLError) return failed([e]);
              throw e;
            }
            let errors: readonly GraphQLError[];
            try {
              errors = enveloped.validate(enveloped.schema, document);
            } catch (e) {
              if (e instanceof GraphQLError) return failed([e]);
              throw e;
            }
            if (errors.length > 0) return failed(errors);
            const args: ExecutionArgs = {
              schema: enveloped.schema,
              document,
              contextValue: await enveloped.contextFactory(),
              variableValues: params.variables,
              operationName: params.operationName,
            };
            const operation = getOperationAST(document, params.operationName);
            const result = await (operation?.operation === 'subscription' ? enveloped.subscribe(args) : enveloped.execute(args));
            // A guard that stops an operation answers `{ errors }`; graphql-sse takes a result for one only with `data`.
            return isAsyncIterable(result) || 'data' in result ? result : failed(result.errors ?? []);
          },
          onNext: (_ctx, _req, result) => withoutHttpExtensions(result),
        },
        yoga.fetchAPI,
      );
    },
    onRequest({ request, url, endResponse }) {
      if (url.pathname === endpoint) return handler(request).then(endResponse);
    },
  };
}

/** A result without data, in the shape graphql-sse recognizes as a result (it looks for `data`). */
function failed(errors: readonly GraphQLError[]): ExecutionResult {
  return { data: null, errors: [...errors] };
}
