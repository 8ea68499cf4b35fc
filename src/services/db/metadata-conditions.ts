import type { Param } from './connection.js';

export type MetadataValue = string | number | boolean;
export type MetadataOp = 'eq' | 'ne' | 'lt' | 'lte' | 'gt' | 'gte' | 'in' | 'exists';

/**
 * A typed test of one JSON path of a sample's `metadata` (what plugins and unknown image keys
 * write). The path has been checked against the strict grammar of services/datasets/metadata-filter.ts;
 * it is bound like every value, never spliced into the SQL.
 */
export interface MetadataCondition {
  /** `$.a.b[0]` form. */
  path: string;
  op: MetadataOp;
  /** One value (`in`: one or more; `exists`: true or false). */
  values: readonly MetadataValue[];
}

const SQL_OP: Record<'eq' | 'lt' | 'lte' | 'gt' | 'gte', string> = { eq: '=', lt: '<', lte: '<=', gt: '>', gte: '>=' };

/**
 * The predicate of one condition on the `metadata` column. A value is compared only with a
 * stored value of its own JSON type (the number 3 never equals the string "3"), and a path that is
 * absent or of another type fails every comparison, except `ne`, which is `NOT eq`: it matches
 * samples without the path too.
 */
export function metadataConditionSql(c: MetadataCondition, params: Param[]): string {
  const bind = (v: Param, cast: string) => {
    params.push(v);
    return `$${params.length}::${cast}`;
  };
  const path = bind(c.path, 'VARCHAR');
  const type = `json_type(metadata, ${path})`;
  const compare = (v: MetadataValue, op: string): string => {
    // json_type first: the cast of a value of another type would fail (TRY_CAST: no error either way).
    if (typeof v === 'number') return `(${type} IN ('BIGINT', 'UBIGINT', 'DOUBLE') AND TRY_CAST(json_extract(metadata, ${path}) AS DOUBLE) ${op} ${bind(v, 'DOUBLE')})`;
    if (typeof v === 'string') return `(${type} = 'VARCHAR' AND json_extract_string(metadata, ${path}) ${op} ${bind(v, 'VARCHAR')})`;
    return `(${type} = 'BOOLEAN' AND TRY_CAST(json_extract(metadata, ${path}) AS BOOLEAN) ${op} ${bind(v, 'BOOLEAN')})`;
  };
  switch (c.op) {
    case 'exists':
      return `${c.values[0] === false ? 'NOT ' : ''}coalesce(${type} <> 'NULL', false)`;
    case 'ne':
      return `NOT coalesce(${compare(c.values[0]!, '=')}, false)`;
    case 'in':
      return `coalesce(${c.values.map((v) => compare(v, '=')).join(' OR ')}, false)`;
    default:
      return `coalesce(${compare(c.values[0]!, SQL_OP[c.op])}, false)`;
  }
}
