import type { SampleSortInput as SortInput } from '../services/datasets/sort.js';
import { builder } from './builder.js';

export const SortDirectionEnum = builder.enumType('SortDirection', {
  values: { ASC: { value: 'asc' }, DESC: { value: 'desc' } } as const,
});

export const SampleSortFieldEnum = builder.enumType('SampleSortField', {
  description: 'What samples are sorted by; ties are always in file order, and samples without a key (no size, no prediction of the run) come last in both directions.',
  values: {
    FILE_NAME: { value: 'file_name', description: 'By UTF-8 bytes, case-sensitive.' },
    WIDTH: { value: 'width' },
    HEIGHT: { value: 'height' },
    PIXELS: { value: 'pixels', description: 'width × height.' },
    ANNOTATION_COUNT: { value: 'annotation_count', description: 'Ground-truth annotations.' },
    CATEGORY_COUNT: { value: 'category_count', description: 'Ground-truth annotations of `category`.' },
    PREDICTION_SCORE_MAX: { value: 'prediction_score_max', description: 'The highest score among the predictions of the run `predictions`.' },
    PREDICTION_SCORE_MIN: { value: 'prediction_score_min', description: 'The lowest score among the predictions of the run `predictions`.' },
    TP: { value: 'tp', description: 'True positives in the evaluation `evaluationId` (IoU 0.5, all areas, 100 detections).' },
    FP: { value: 'fp', description: 'False positives in the evaluation `evaluationId`.' },
    FN: { value: 'fn', description: 'Missed objects in the evaluation `evaluationId`.' },
    RANDOM: { value: 'random', description: 'A stable shuffle by `seed`: the same seed gives the same order.' },
  } as const,
});

/** The one sample sort's GraphQL spelling (services/datasets/sort.ts); views save it as it is. */
export const SampleSortInput: ReturnType<typeof builder.inputRef<SortInput>> = builder.inputRef<SortInput>('SampleSort');

SampleSortInput.implement({
  description: 'The order of a sample list. Cursors of a sorted list carry the sort key; one made under another sort is refused.',
  fields: (t) => ({
    field: t.field({ type: SampleSortFieldEnum, required: true }),
    direction: t.field({ type: SortDirectionEnum, defaultValue: 'asc' }),
    category: t.string({ description: 'CATEGORY_COUNT: the category\'s name.' }),
    predictions: t.string({ description: 'PREDICTION_SCORE_MAX/MIN: the prediction run\'s name.' }),
    evaluationId: t.id({ description: 'TP, FP, FN: the evaluation\'s id.' }),
    seed: t.field({ type: 'SafeInt', description: 'RANDOM: an integer from 0 to 4294967295.' }),
  }),
});
