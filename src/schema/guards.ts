import { ApolloArmor, EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, Kind, validate, visit, type DocumentNode, type OperationDefinitionNode, type ValidationContext, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Limits on what one operation may ask for (docs/graphql.md, "Limits"), checked by graphql-armor
 * while the operation is validated, before any resolver runs. Its cost rule multiplies a
 * selection by a literal `first`/`last`; `useVariablePageSizes` runs the same rule again once
 * variables are known, so `first: $n` cannot slip past it.
 */
export const LIMITS = {
  maxDepth: 10,
  /**
   * In graphql-armor's units (objects 2, scalars 1, ×1.5 per level, × first/last): a page of
   * 200 samples with annotations and boxes costs about 30,000; 200 samples under each of 10
   * datasets is ten times that and is refused.
   */
  maxCost: 60_000,
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
    useVariablePageSizes(),
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

/** The document with each `first: $var` / `last: $var` replaced by the variable's value, or null if none. */
function inlinePageSizes(document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): DocumentNode | null {
  const defaults = new Map(operation.variableDefinitions?.map((d) => [d.variable.name.value, d.defaultValue]) ?? []);
  let changed = false;
  const inlined = visit(document, {
    Argument(node) {
      if ((node.name.value !== 'first' && node.name.value !== 'last') || node.value.kind !== Kind.VARIABLE) return undefined;
      const name = node.value.name.value;
      const given = variables[name];
      const fallback = defaults.get(name);
      const value = Number.isInteger(given) ? String(given) : given == null && fallback?.kind === Kind.INT ? fallback.value : null;
      if (value === null) return undefined;
      changed = true;
      return { ...node, value: { kind: Kind.INT, value } };
    },
  });
  return changed ? inlined : null;
}

function useVariablePageSizes(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const source = args.document as DocumentNode;
      const operation = source.definitions.find(
        (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (!args.operationName || d.name?.value === args.operationName),
      );
      if (!operation?.variableDefinitions?.length) return;
      const document = inlinePageSizes(source, operation, (args.variableValues ?? {}) as Record<string, unknown>);
      if (!document) return;
      const errors = validate(args.schema, document, costRule);
      if (errors.length > 0) setResultAndStopExecution({ errors });
    },
  };
}
