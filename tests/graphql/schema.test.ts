import fs from 'node:fs';
import { buildSchema, isObjectType, isInputObjectType, isEnumType, type GraphQLField, type GraphQLInputField } from 'graphql';
import { describe, expect, test } from 'vitest';
import { dist } from './harness.js';

const { printSchemaSDL, SCHEMA_FILE } = dist<typeof import('../../dist/schema/print.js')>('schema/print.js');

describe('schema.graphql', () => {
  test('is printed from the Pothos schema (run `npm run schema` when this fails)', () => {
    expect(fs.readFileSync(SCHEMA_FILE, 'utf8'), 'schema.graphql is stale: run `npm run schema` and commit it').toBe(printSchemaSDL());
  });
});

/** The GraphQL section of docs/contract.md, field by field, against the checked-in SDL. */
describe('the contract', () => {
  const schema = buildSchema(fs.readFileSync(SCHEMA_FILE, 'utf8'));
  const sig = (f: GraphQLField<unknown, unknown> | GraphQLInputField) =>
    'args' in f && f.args.length
      ? `${f.name}(${[...f.args].sort((a, b) => a.name.localeCompare(b.name)).map((a) => `${a.name}: ${String(a.type)}${a.defaultValue !== undefined ? ` = ${String(a.defaultValue)}` : ''}`).join(', ')}): ${String(f.type)}`
      : `${f.name}: ${String(f.type)}`;
  const fields = (type: string) => {
    const t = schema.getType(type);
    if (!isObjectType(t) && !isInputObjectType(t)) throw new Error(`${type} is not an object or input type`);
    return Object.values(t.getFields()).map(sig);
  };
  const PAGING = ['after: String', 'before: String', 'first: Int', 'last: Int'];
  const args = (...extra: string[]) => [...PAGING, ...extra].sort().join(', ');

  test.each([
    ['Query', `datasets(${args()}): DatasetConnection!`],
    ['Query', 'dataset(id: ID!): Dataset'],
    ['Query', `samples(${args('datasetId: ID!', 'filter: SampleFilter', 'sort: SampleSort', 'viewId: ID')}): SampleConnection!`],
    ['Query', 'node(id: ID!): Node'],
    ['Dataset', `samples(${args('filter: SampleFilter', 'sort: SampleSort', 'viewId: ID')}): SampleConnection!`],
    ['Mutation', 'tagSamples(input: TagSamplesInput!): Int!'],
    ['Mutation', 'untagSamples(input: TagSamplesInput!): Int!'],
    ['Mutation', 'saveView(input: SaveViewInput!): View!'],
    ['SampleFilter', 'tags: [String!]'],
    ['Mutation', 'deleteDataset(id: ID!): ID!'],
    ['Subscription', 'ingestDataset(input: IngestInput!): IngestionProgress!'],
    ['Sample', 'thumbnailUrl(size: ThumbnailSize = MEDIUM): String!'],
    ['Sample', 'imageUrl: String!'],
  ])('%s.%s', (type, signature) => {
    expect(fields(type)).toContain(signature);
  });

  test.each([
    ['SampleSort', ['field: SampleSortField!', 'direction: SortDirection']],
    ['SampleFilter', ['category: String', 'categories: [String!]', 'split: String', 'fileNameContains: String']],
    ['Dataset', ['id', 'name', 'format', 'sourcePath', 'imageDir', 'imageCount', 'annotationCount', 'categoryCount', 'createdAt', 'categories']],
    ['Category', ['id', 'categoryId', 'name', 'supercategory', 'annotationCount']],
    ['Sample', ['id', 'fileName', 'width', 'height', 'split', 'annotations', 'thumbnailUrl', 'imageUrl']],
    ['Annotation', ['id', 'categoryName', 'bbox', 'area', 'isCrowd', 'source', 'confidence']],
    ['BBox', ['x', 'y', 'w', 'h']],
    ['Dataset', ['views', 'tags', 'view']],
    ['View', ['id', 'name']],
    ['TagSamplesInput', ['datasetId', 'filter', 'tags']],
    ['SaveViewInput', ['datasetId', 'name', 'filter', 'sort']],
    ['IngestInput', ['annotationPath', 'imageDir', 'datasetName', 'format', 'split']],
    ['IngestionProgress', ['stage', 'current', 'total', 'message', 'datasetId']],
    ['SampleConnection', ['edges', 'pageInfo', 'totalCount']],
    ['DatasetConnection', ['edges', 'pageInfo', 'totalCount']],
    ['SampleEdge', ['cursor', 'node']],
    ['PageInfo', ['hasNextPage', 'hasPreviousPage', 'startCursor', 'endCursor']],
  ])('%s has the contract fields', (type, names) => {
    const have = fields(type);
    for (const n of names) expect(have.some((f) => f === n || f.startsWith(`${n}:`) || f.startsWith(`${n}(`)), `${type}.${n}`).toBe(true);
  });

  test('SampleSortField has the curation contract\'s fields, SortDirection ASC and DESC', () => {
    const field = schema.getType('SampleSortField');
    const direction = schema.getType('SortDirection');
    expect(isEnumType(field) && field.getValues().map((v) => v.name)).toEqual(expect.arrayContaining(['FILE_NAME', 'WIDTH', 'HEIGHT', 'ANNOTATION_COUNT']));
    expect(isEnumType(direction) && direction.getValues().map((v) => v.name)).toEqual(['ASC', 'DESC']);
  });

  test('stages are REST stages in upper case', () => {
    const stage = schema.getType('IngestStage');
    expect(isEnumType(stage) && stage.getValues().map((v) => v.name).sort()).toEqual(
      ['categories', 'parsing_images', 'parsing_annotations', 'parsing_predictions', 'thumbnails', 'complete', 'error'].map((s) => s.toUpperCase()).sort(),
    );
  });
});
