import { ApolloArmor, EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
  type ArgumentNode,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DEFAULT_PAGE_SIZE } from '../services/datasets/paging.js';

/**
 * Limits on what one operation may ask for (docs/graphql.md, "Limits"), checked by graphql-armor
 * while the operation is validated, before any resolver runs. Its cost rule multiplies a
 * selection by a literal `first`/`last` only; `useEffectivePageSizes` runs the same rule again,
 * before execution, with the page sizes the operation will really get (variables, and the default
 * page of a connection given neither), so `first: $n` or a bare connection cannot slip past it.
 */
export const LIMITS = {
  maxDepth: 10,
  /**
   * In graphql-armor's units (objects 2, scalars 1, ×1.5 per level, × first/last). A page of 200
   * samples with annotations and boxes costs about 20,000, GraphiQL's first query about 1,100;
   * 200 samples with annotations under each of 3 datasets about 180,000 (accepted), under each of
   * 10 datasets about 590,000 (refused).
   */
  maxCost: 200_000,
  maxAliases: 15,
  maxDirectives: 20,
  maxTokens: 2_000,
} as const;

/** A refused operation is the client's mistake: BAD_USER_INPUT, and HTTP 400. */
const limitError = (message: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });

const reportLimit = (ctx: ValidationContext | null, error: GraphQLError) => {
  ctx?.reportError(limitError(error.message.replace(/^Syntax Error: /, '')));
};

/** Validation-time protections report through the validation context instead of throwing. */
const viaContext = { propagateOnRejection: false, onReject: [reportLimit] };

export function useAbuseGuards(options: { production: boolean }): Plugin[] {
  return [
    EnvelopArmorPlugin({
      maxDepth: { n: LIMITS.maxDepth, ignoreIntrospection: true, ...viaContext },
      costLimit: { maxCost: LIMITS.maxCost, ignoreIntrospection: true, ...viaContext },
      maxAliases: { n: LIMITS.maxAliases, ...viaContext },
      maxDirectives: { n: LIMITS.maxDirectives, ...viaContext },
      // Counted while parsing, where there is no validation context: this one throws.
      maxTokens: { n: LIMITS.maxTokens },
      // "Did you mean …?" helps in development and maps the schema for an attacker.
      blockFieldSuggestion: { enabled: options.production },
    }) as Plugin,
    useEffectivePageSizes(),
  ];
}

/**
 * graphql-armor's cost rule as a plain validation rule. Its Apollo flavour hands out exactly
 * that (reporting through the validation context); every other protection is switched off here.
 */
const costRule: ValidationRule[] = new ApolloArmor({
  costLimit: { maxCost: LIMITS.maxCost, ignoreIntrospection: true, propagateOnRejection: false, onReject: [reportLimit] },
  maxDepth: { enabled: false },
  maxAliases: { enabled: false },
  maxDirectives: { enabled: false },
  maxTokens: { enabled: false },
  blockFieldSuggestion: { enabled: false },
}).protect().validationRules as ValidationRule[];

/**
 * The document as the cost rule should see it: `first: $var` / `last: $var` become the
 * variable's value, and a connection with neither gets the default page size it will really
 * return. `null` when nothing changed; `dependsOnVariables` tells whether the answer may change
 * with the variables (otherwise it is cached per document).
 */
function withPageSizes(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown>,
): { document: DocumentNode | null; dependsOnVariables: boolean } {
  const defaults = new Map<string, ValueNode | undefined>();
  for (const d of document.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION) for (const v of d.variableDefinitions ?? []) defaults.set(v.variable.name.value, v.defaultValue);
  }
  let changed = false;
  let dependsOnVariables = false;
  const sizeOf = (value: ValueNode): ValueNode | null => {
    if (value.kind === Kind.NULL) return { kind: Kind.INT, value: String(DEFAULT_PAGE_SIZE) };
    if (value.kind !== Kind.VARIABLE) return null;
    dependsOnVariables = true;
    const given = variables[value.name.value];
    const fallback = defaults.get(value.name.value);
    if (Number.isInteger(given)) return { kind: Kind.INT, value: String(given) };
    if (given == null && fallback?.kind === Kind.INT) return fallback;
    // No page size given: the default page.
    if (given == null) return { kind: Kind.INT, value: String(DEFAULT_PAGE_SIZE) };
    return null;
  };
  const typeInfo = new TypeInfo(schema);
  const rewritten = visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const def = typeInfo.getFieldDef();
        if (!def?.args.some((a) => a.name === 'first') || !def.args.some((a) => a.name === 'last')) return undefined;
        const args = node.arguments ?? [];
        const sized = args.filter((a) => a.name.value === 'first' || a.name.value === 'last');
        if (sized.length === 0) {
          changed = true;
          const first: ArgumentNode = { kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'first' }, value: { kind: Kind.INT, value: String(DEFAULT_PAGE_SIZE) } };
          return { ...node, arguments: [...args, first] };
        }
        let replaced = false;
        const next = args.map((a) => {
          if (!sized.includes(a)) return a;
          const value = sizeOf(a.value);
          if (!value) return a;
          replaced = true;
          return { ...a, value };
        });
        if (!replaced) return undefined;
        changed = true;
        return { ...node, arguments: next };
      },
    }),
  );
  return { document: changed ? rewritten : null, dependsOnVariables };
}

/** Verdicts for documents whose cost does not depend on variables (yoga hands out one document object per query text). */
const verdicts = new WeakMap<DocumentNode, readonly GraphQLError[]>();

/** The cost errors of an operation with its real page sizes, or none. */
function effectiveCostErrors(args: { schema: GraphQLSchema; document: unknown; variableValues?: unknown }): readonly GraphQLError[] {
  const source = args.document as DocumentNode;
  let errors = verdicts.get(source);
  if (!errors) {
    const { document, dependsOnVariables } = withPageSizes(args.schema, source, (args.variableValues ?? {}) as Record<string, unknown>);
    errors = document ? validate(args.schema, document, costRule) : [];
    if (!dependsOnVariables) verdicts.set(source, errors);
  }
  return errors;
}

function useEffectivePageSizes(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const errors = effectiveCostErrors(args);
      if (errors.length > 0) setResultAndStopExecution({ errors });
    },
    // A subscription's events can select connections too (IngestionProgress.dataset.samples).
    onSubscribe({ args, setResultAndStopExecution }) {
      const errors = effectiveCostErrors(args);
      if (errors.length > 0) setResultAndStopExecution({ errors });
    },
  };
}
