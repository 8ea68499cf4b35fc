import { byScoreDescending } from './score-order.js';
import type { EvalDetection } from './types.js';

/**
 * Positions of the items whose category is evaluated (category index >= 0), by category, then by
 * `compare`. Images hold tens of items, where an insertion sort beats the builtin sort's calls into
 * the comparator.
 */
export function orderByCategory(categories: Int32Array, compare: (a: number, b: number) => number): number[] {
  const items: number[] = [];
  for (let i = 0; i < categories.length; i++) if (categories[i]! >= 0) items.push(i);
  const byCategory = (a: number, b: number) => categories[a]! - categories[b]! || compare(a, b);
  if (items.length > 64) return items.sort(byCategory);
  for (let i = 1; i < items.length; i++) {
    const x = items[i]!;
    let j = i - 1;
    for (; j >= 0 && byCategory(items[j]!, x) > 0; j--) items[j + 1] = items[j]!;
    items[j + 1] = x;
  }
  return items;
}

/** pycocotools' stable sort by descending score: results-file order on ties. */
export function compareDetections(a: EvalDetection, b: EvalDetection): number {
  return byScoreDescending(a.score, b.score) || a.index - b.index;
}
