/**
 * The DuckDB schema (docs/storage.md explains each choice). No PRIMARY KEY or UNIQUE constraints:
 * DuckDB maintains them with ART indexes that slow bulk appends several-fold, and COCO files
 * legitimately hold duplicate annotation ids; uniqueness that matters is checked in SQL at ingest.
 */
export const SCHEMA_VERSION = 4;

/**
 * Codes of the segmentation kinds, in the order of the parser's codes (SEGMENTATION_KINDS in
 * coco/batch.ts): staged rows carry the code, which is this ENUM's own storage (one byte).
 */
const SEGMENTATION_KIND_TYPE = `CREATE TYPE IF NOT EXISTS segmentation_kind AS ENUM ('none', 'polygon', 'rle', 'compressed_rle')`;

/**
 * Which label set an annotation belongs to: 0 is the dataset's ground truth, others are prediction
 * runs (the `label_sets` table names them). Added by ALTER in version 3, hence no NOT NULL: DuckDB
 * cannot add a column with one, and a fresh table is kept identical to an upgraded one.
 */
const LABEL_SET_COLUMN = 'label_set INTEGER DEFAULT 0';
/** Every change after ingest bumps it: caches and validators of a dataset's content key on it. */
const REVISION_COLUMN = 'revision BIGINT DEFAULT 0';

/**
 * The label sets of a dataset; ground truth (0) is made with the dataset. `ord_base`: a run's
 * annotations are numbered after every ord the dataset held when it was imported (ord - ord_base
 * is the prediction's position in its file). `revision`: the dataset's revision when the set's
 * rows last changed; an evaluation computed before it is stale.
 */
const LABEL_SETS_TABLE = `CREATE TABLE IF NOT EXISTS label_sets (
    dataset_id VARCHAR NOT NULL,
    label_set INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    source_path VARCHAR,
    annotation_count BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    ord_base INTEGER NOT NULL,
    revision BIGINT NOT NULL
  )`;

/**
 * Evaluations of a prediction run against the ground truth (docs/evaluation.md): the summary as
 * JSON, and one outcome row per prediction, ground-truth object and sample (IoU 0.5, area all,
 * 100 detections), which filters and object views join (an object's category is its
 * annotation's: joined on `ord`). Outcome and error codes are the indexes
 * of DETECTION_OUTCOMES, GROUND_TRUTH_OUTCOMES and ERROR_KINDS (db/evaluations.ts).
 */
const EVALUATION_TABLES = [
  `CREATE TABLE IF NOT EXISTS evaluations (
    id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    label_set INTEGER NOT NULL,
    predictions VARCHAR NOT NULL,
    iou_type VARCHAR NOT NULL,
    revision BIGINT NOT NULL,
    metrics JSON NOT NULL,
    per_category JSON NOT NULL,
    confusion JSON NOT NULL,
    totals JSON NOT NULL,
    errors JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    seconds DOUBLE NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS eval_curves (
    evaluation_id VARCHAR NOT NULL,
    category_id BIGINT NOT NULL,
    iou_index INTEGER NOT NULL,
    precision DOUBLE[] NOT NULL,
    scores DOUBLE[] NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS eval_detections (
    evaluation_id VARCHAR NOT NULL,
    ord INTEGER NOT NULL,
    sample_ord INTEGER NOT NULL,
    score DOUBLE NOT NULL,
    outcome UTINYINT NOT NULL,
    gt_ord INTEGER,
    iou DOUBLE,
    error UTINYINT
  )`,
  `CREATE TABLE IF NOT EXISTS eval_ground_truth (
    evaluation_id VARCHAR NOT NULL,
    ord INTEGER NOT NULL,
    sample_ord INTEGER NOT NULL,
    outcome UTINYINT NOT NULL,
    dt_ord INTEGER
  )`,
  `CREATE TABLE IF NOT EXISTS eval_samples (
    evaluation_id VARCHAR NOT NULL,
    sample_ord INTEGER NOT NULL,
    tp INTEGER NOT NULL,
    fp INTEGER NOT NULL,
    fn INTEGER NOT NULL
  )`,
];

/**
 * Tags and saved views (docs/curation.md). A tag row names a sample by its `ord` (an annotation by
 * its `ord`), as every other table does; one row per (object, tag), kept unique by the SQL that
 * adds them (no UNIQUE constraint, as elsewhere). `views` keeps a filter in the API's own
 * (GraphQL) spelling and a sort as its API JSON, both checked when saved and parsed again when used.
 */
const CURATION_TABLES = [
  `CREATE TABLE IF NOT EXISTS sample_tags (
    dataset_id VARCHAR NOT NULL,
    sample_ord INTEGER NOT NULL,
    tag VARCHAR NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS annotation_tags (
    dataset_id VARCHAR NOT NULL,
    ord INTEGER NOT NULL,
    tag VARCHAR NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS views (
    id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    filter JSON NOT NULL,
    sort JSON,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
  )`,
];

/**
 * Summaries the aggregations build when first needed (db/summaries.ts). Derived data stamped with
 * the revision of the label set they summarize: a file without these tables gets them at open, and
 * a DataVisor that does not know them ignores them (its changes of annotations move the label
 * sets' revisions too), so they need no schema version.
 */
const SUMMARY_TABLES = [
  `CREATE TABLE IF NOT EXISTS summary_builds (
    dataset_id VARCHAR NOT NULL,
    revision BIGINT NOT NULL,
    label_set INTEGER NOT NULL,
    part VARCHAR NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS sample_categories (
    dataset_id VARCHAR NOT NULL,
    revision BIGINT NOT NULL,
    label_set INTEGER NOT NULL,
    sample_ord INTEGER NOT NULL,
    category_id BIGINT NOT NULL,
    n INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS category_pairs (
    dataset_id VARCHAR NOT NULL,
    revision BIGINT NOT NULL,
    label_set INTEGER NOT NULL,
    a BIGINT NOT NULL,
    b BIGINT NOT NULL,
    n BIGINT NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS field_stats (
    dataset_id VARCHAR NOT NULL,
    revision BIGINT NOT NULL,
    label_set INTEGER NOT NULL,
    field VARCHAR NOT NULL,
    log BOOLEAN NOT NULL,
    mn DOUBLE,
    mx DOUBLE,
    c BIGINT NOT NULL
  )`,
];


/**
 * The annotations table, under `name` (a migration builds it beside the old one). `source` follows
 * from `score` and is computed when read: storing it per row (and the kind as text) cost a
 * train2017-scale ingest ~0.17 s of its final write (docs/storage.md).
 */
const annotationsTable = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
    dataset_id VARCHAR NOT NULL,
    sample_ord INTEGER NOT NULL,
    ord INTEGER NOT NULL,
    annotation_id BIGINT NOT NULL,
    image_id BIGINT NOT NULL,
    category_id BIGINT NOT NULL,
    bbox_x DOUBLE,
    bbox_y DOUBLE,
    bbox_w DOUBLE,
    bbox_h DOUBLE,
    area DOUBLE,
    is_crowd BOOLEAN NOT NULL,
    segmentation_kind segmentation_kind NOT NULL,
    polygon_count INTEGER NOT NULL,
    point_count INTEGER NOT NULL,
    num_keypoints INTEGER,
    score DOUBLE,
    source VARCHAR GENERATED ALWAYS AS (CASE WHEN score IS NULL THEN 'ground_truth' ELSE 'prediction' END) VIRTUAL,
    extra VARCHAR,
    ${LABEL_SET_COLUMN}
  )`;

/** The stored columns of `annotations`, in order (INSERTs name them: `source` is not stored). */
export const ANNOTATION_STORED_COLUMNS = `dataset_id, sample_ord, ord, annotation_id, image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h,
  area, is_crowd, segmentation_kind, polygon_count, point_count, num_keypoints, score, extra`;

/** Statements that bring a database of schema version N (the key) to N + 1, in one transaction. */
export const MIGRATIONS: Record<number, string[]> = {
  // Version 1 stored segmentation_kind and source as text.
  1: [
    SEGMENTATION_KIND_TYPE,
    annotationsTable('annotations_v2'),
    // A single-table scan keeps the rows' order, so the table stays sorted by sample.
    `INSERT INTO annotations_v2 (${ANNOTATION_STORED_COLUMNS})
     SELECT ${ANNOTATION_STORED_COLUMNS.replace('segmentation_kind', 'segmentation_kind::segmentation_kind')} FROM annotations`,
    'DROP TABLE annotations',
    'ALTER TABLE annotations_v2 RENAME TO annotations',
  ],
  // Version 3: datasets can change after ingest (revision), annotations belong to a label set.
  2: [
    `ALTER TABLE datasets ADD COLUMN IF NOT EXISTS ${REVISION_COLUMN}`,
    `ALTER TABLE annotations ADD COLUMN IF NOT EXISTS ${LABEL_SET_COLUMN}`,
    LABEL_SETS_TABLE,
    `INSERT INTO label_sets SELECT id, 0, 'ground_truth', 'ground_truth', source_path, annotation_count, created_at, 0, 0 FROM datasets`,
    ...EVALUATION_TABLES,
  ],
  // Version 4: tags on samples and annotations, saved views (new tables, nothing to convert).
  3: CURATION_TABLES,
};

export const SCHEMA_STATEMENTS = [
  SEGMENTATION_KIND_TYPE,
  `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS datasets (
    id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,
    image_dir VARCHAR NOT NULL,
    split VARCHAR,
    image_count BIGINT NOT NULL,
    annotation_count BIGINT NOT NULL,
    category_count INTEGER NOT NULL,
    info JSON,
    warnings JSON NOT NULL,
    plugin_stats JSON,
    bytes BIGINT NOT NULL,
    ingest_seconds DOUBLE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    ${REVISION_COLUMN}
  )`,
  LABEL_SETS_TABLE,
  ...EVALUATION_TABLES,
  ...CURATION_TABLES,
  ...SUMMARY_TABLES,
  `CREATE TABLE IF NOT EXISTS licenses (
    dataset_id VARCHAR NOT NULL,
    license_id BIGINT NOT NULL,
    name VARCHAR,
    url VARCHAR
  )`,
  `CREATE TABLE IF NOT EXISTS categories (
    dataset_id VARCHAR NOT NULL,
    category_id BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    supercategory VARCHAR,
    extra JSON,
    annotation_count BIGINT NOT NULL,
    image_count BIGINT NOT NULL
  )`,
  // ord: the image's position in the file (0..n-1). It is the stable sort key, the keyset
  // cursor, and turns offset paging into a range scan.
  `CREATE TABLE IF NOT EXISTS samples (
    dataset_id VARCHAR NOT NULL,
    ord INTEGER NOT NULL,
    image_id BIGINT NOT NULL,
    file_name VARCHAR NOT NULL,
    width INTEGER,
    height INTEGER,
    split VARCHAR,
    license_id BIGINT,
    coco_url VARCHAR,
    flickr_url VARCHAR,
    date_captured VARCHAR,
    metadata VARCHAR,
    annotation_count INTEGER NOT NULL,
    file_missing BOOLEAN NOT NULL
  )`,
  // Sorted by (sample_ord, ord) at ingest, so a page's annotations are a narrow range that zone
  // maps find: ~3 ms for 50 samples against ~17 ms in file order (docs/storage.md).
  annotationsTable('annotations'),
  // Polygons, RLE counts and keypoints (opt-in): most of a COCO file's bytes, needed only when
  // one sample is drawn, so kept apart and the table above stays narrow (docs/storage.md).
  `CREATE TABLE IF NOT EXISTS annotation_shapes (
    dataset_id VARCHAR NOT NULL,
    ord INTEGER NOT NULL,
    segmentation VARCHAR,
    keypoints VARCHAR
  )`,
];
