import type { AccessService } from '../access.js';
import { SAMPLE_FILTER_FIELDS, type SampleFilter } from '../datasets/filter.js';
import type { AnnotationScope, ExportFormat } from './export.js';

/**
 * The path and query of the REST export (GET /datasets/{id}/export) of a checked filter: what
 * GraphQL's `exportUrl` hands out. With DATAVISOR_API_TOKEN it ends with its signature (`exp`,
 * `sig`), so the link downloads in a browser without the token, as image URLs do.
 */
export function exportPath(
  datasetId: string,
  request: { format: ExportFormat; filter: SampleFilter; predictions: string | null; annotations: AnnotationScope | null },
  access: AccessService,
): string {
  const q = new URLSearchParams();
  q.set('format', request.format);
  if (request.predictions !== null) q.set('predictions', request.predictions);
  if (request.annotations !== null) q.set('annotations', request.annotations);
  const { categories, evaluationId, evaluationHas, ...rest } = request.filter;
  for (const c of categories ?? []) q.append(SAMPLE_FILTER_FIELDS.categories.param, c);
  for (const [field, value] of Object.entries(rest)) {
    if (value !== undefined) q.set(SAMPLE_FILTER_FIELDS[field as keyof typeof SAMPLE_FILTER_FIELDS].param, String(value));
  }
  if (evaluationId !== undefined) q.set(SAMPLE_FILTER_FIELDS.evaluation.param, evaluationId);
  for (const o of evaluationHas ?? []) q.append('evaluation_has', o);
  const path = `/datasets/${encodeURIComponent(datasetId)}/export?${q.toString()}`;
  const signature = access.exportQuerySuffix(path);
  return signature === '' ? path : `${path}&${signature}`;
}
