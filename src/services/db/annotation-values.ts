/** What a histogram counts: one value per annotation of the label set, or per sample. */
export type HistogramField = 'bbox_area' | 'aspect_ratio' | 'relative_size' | 'score' | 'annotations_per_sample' | 'width' | 'height' | 'pixels';

/** The fields with one value per annotation. */
export type AnnotationField = 'bbox_area' | 'aspect_ratio' | 'relative_size' | 'score';

/**
 * The value of each annotation field as SQL over `annotations a` (and the image sizes `s`, see
 * IMAGE_SIZES): fixed text, never input. The histograms and the per-sample summaries of their
 * values (db/summaries.ts) both compute `(expression)::DOUBLE` from this text, so the minimum a
 * summary keeps is the very double the histogram counts.
 */
export const ANNOTATION_VALUES: Record<AnnotationField, string> = {
  bbox_area: 'a.bbox_w * a.bbox_h',
  aspect_ratio: 'a.bbox_w / nullif(a.bbox_h, 0)',
  // sqrt of the box's share of the image: a length ratio (COCO's size classes use the sqrt of areas).
  relative_size: 'sqrt(a.bbox_w * a.bbox_h / s.px)',
  score: 'a.score',
};

export const isAnnotationField = (f: HistogramField): f is AnnotationField => f in ANNOTATION_VALUES;

/** An image's pixel count for `relative_size` (column `px`, of samples `m`), null when 0. */
const PIXELS = 'nullif(m.width::DOUBLE * m.height, 0) AS px';

/**
 * The image sizes for `relative_size` (alias `s`, column `px`), joined on `ord` alone: a join on
 * (dataset_id, ord) compares the id's text per row (32 against 6.5 ms CPU at train2017 scale). The
 * pixel count is computed once per image on the join's small side, not per annotation. `$1` is
 * the dataset id.
 */
export const IMAGE_SIZES = ` JOIN (SELECT m.ord, ${PIXELS} FROM samples m WHERE m.dataset_id = $1) s ON s.ord = a.sample_ord`;

/** IMAGE_SIZES of the samples `selected` (a query of their ords, `sel_ord`) only. */
export const selectedImageSizes = (selected: string) =>
  ` JOIN (SELECT m.ord, ${PIXELS} FROM samples m JOIN (${selected}) sel ON sel.sel_ord = m.ord WHERE m.dataset_id = $1) s ON s.ord = a.sample_ord`;
