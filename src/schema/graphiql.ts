import type { GraphiQLOptions } from 'graphql-yoga';
import type { DataVisor } from '../services/app.js';

const SAMPLE_FIELDS = `id
        sampleId
        fileName
        width
        height
        thumbnailUrl(size: SMALL)
        imageUrl
        annotations {
          categoryName
          bbox { x y w h }
        }`;

/**
 * GraphiQL's first tab: a real page of samples of the newest dataset (looked up per page view,
 * so it follows new ingests), or, with no dataset yet, the same query with a variable and a
 * reminder of how to make one.
 */
export function defaultQuery(datasetId: string | null): string {
  if (datasetId) {
    return `# The first samples of the newest dataset. Ctrl-Enter runs the query; pass
# pageInfo.endCursor as \`after\` for the next page.
query FirstSamples {
  samples(datasetId: "${datasetId}", first: 12) {
    edges {
      node {
        ${SAMPLE_FIELDS}
      }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
  dataset(id: "${datasetId}") {
    name
    imageCount
    categories { name annotationCount }
  }
}
`;
  }
  return `# No dataset yet: ingest one (subscription ingestDataset, REST POST /datasets/ingest, or
# \`datavisor ingest\`), then set datasetId in the variables below.
query FirstSamples($datasetId: ID!) {
  samples(datasetId: $datasetId, first: 12) {
    totalCount
    edges {
      node {
        ${SAMPLE_FIELDS}
      }
    }
  }
}
`;
}

export function graphiqlOptions(dv: DataVisor): (request: Request) => Promise<GraphiQLOptions> {
  return async () => {
    // With DATAVISOR_API_TOKEN set the page loads without the token (a browser cannot add a header
    // to a navigation; docs/security.md), so it names no dataset, and its Headers tab starts with
    // the header every query it sends needs.
    if (dv.access.enabled) {
      return {
        title: 'DataVisor GraphQL',
        defaultQuery: defaultQuery(null),
        headers: JSON.stringify({ Authorization: 'Bearer <DATAVISOR_API_TOKEN>' }, null, 2),
        defaultEditorToolsVisibility: 'headers',
        subscriptionsProtocol: 'GRAPHQL_SSE',
      };
    }
    const newest = (await dv.datasets.page({ kind: 'after', after: null, limit: 1 })).datasets[0];
    return {
      title: 'DataVisor GraphQL',
      defaultQuery: defaultQuery(newest?.id ?? null),
      // Subscriptions go to /graphql/stream with graphql-sse's protocol.
      subscriptionsProtocol: 'GRAPHQL_SSE',
    };
  };
}
