import type { AccessService } from '../access.js';
import { filterQueryParams, type SampleFilterInput } from '../datasets/filter.js';
import type { AnnotationScope, ExportFormat } from './export.js';

/**
 * The path and query of the REST export (GET /datasets/{id}/export) of a filter (checked by the
 * caller) and saved view: what
 * GraphQL's `exportUrl` hands out. With DATAVISOR_API_TOKEN it ends with its signature (`exp`,
 * `sig`), so the link downloads in a browser without the token, as image URLs do.
 */
export function exportPath(
  datasetId: string,
  request: { format: ExportFormat; filter: SampleFilterInput | null | undefined; viewId: string | null; predictions: string | null; annotations: AnnotationScope | null },
  access: AccessService,
): string {
  const q = new URLSearchParams();
  q.set('format', request.format);
  if (request.predictions !== null) q.set('predictions', request.predictions);
  if (request.annotations !== null) q.set('annotations', request.annotations);
  if (request.viewId !== null) q.set('view', request.viewId);
  for (const [param, value] of filterQueryParams(request.filter)) q.append(param, value);
  const path = `/datasets/${encodeURIComponent(datasetId)}/export?${q.toString()}`;
  const signature = access.exportQuerySuffix(path);
  return signature === '' ? path : `${path}&${signature}`;
}
