import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import RelayPlugin from '@pothos/plugin-relay';
import { GraphQLError, Kind, valueFromASTUntyped } from 'graphql';
import type { GraphQLContext } from './context.js';
import { decodeGlobalId, encodeGlobalId } from './global-ids.js';

/** The builder's type parameters, for refs exported from one type file to another. */
export type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/**
 * Plugins, context, scalars and Relay options; no object types (each lives in its own file and
 * schema/index.ts imports them).
 */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    // A JSON value is never undefined; Pothos types an input field's shape as `{} | null`.
    JSON: { Input: {} | null; Output: unknown };
    SafeInt: { Input: number; Output: number };
  };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Connection: { totalCount: () => Promise<number> };
}>({
  plugins: [RelayPlugin, DataloaderPlugin],
  // Fields are non-null unless they say otherwise: most values always exist, and `null` then means something.
  defaultFieldNullability: false,
  relay: {
    cursorType: 'String',
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
    // Relay's shape (base64 of "Type:localId"), with errors that say what is wrong instead of a 500.
    encodeGlobalID: (typename, id) => encodeGlobalId(typename, String(id)),
    decodeGlobalID: (globalId) => decodeGlobalId(globalId),
    nodeTypeOptions: { description: 'An object with a global id, which `node(id:)` fetches again.' },
    pageInfoTypeOptions: { description: 'Where a page lies in its connection (Relay spec).' },
    nodeQueryOptions: { description: 'Any object by its global id (`Dataset` or `Sample`); `null` and a NOT_FOUND error if it does not exist.' },
    nodesQueryOptions: { description: 'Objects by global id, in the order given; `null` and a NOT_FOUND error for each that does not exist.' },
  },
});

builder.scalarType('DateTime', {
  description: 'An instant as an ISO 8601 string in UTC, e.g. `2024-05-01T12:00:00.000Z`.',
  serialize: (d) => d.toISOString(),
  parseValue: (v) => {
    const d = new Date(String(v));
    if (typeof v !== 'string' || Number.isNaN(d.getTime())) throw new GraphQLError(`DateTime must be an ISO 8601 string, got ${JSON.stringify(v)}`);
    return d;
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value: as the annotation file had it (output), a value to compare with (input).',
  serialize: (v) => v,
  parseValue: (v) => v as {} | null,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables) as {} | null,
});

/** COCO ids are integers that may exceed GraphQL's 32-bit Int (ids up to 2^53 - 1 survive JSON). */
const asSafeInt = (v: unknown): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new GraphQLError(`SafeInt must be an integer within ±(2^53 - 1), got ${JSON.stringify(v)}`);
  return v;
};

builder.scalarType('SafeInt', {
  description: 'An integer that may exceed 32 bits (COCO ids), up to ±(2^53 - 1); a JSON number on the wire.',
  serialize: asSafeInt,
  parseValue: asSafeInt,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.INT) throw new GraphQLError('SafeInt must be an integer literal');
    return asSafeInt(Number(ast.value));
  },
});
