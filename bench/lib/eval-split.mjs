// Where dv.evaluations.evaluate spends its time, measured from outside the service: the methods it
// goes through are wrapped on their prototypes (and the database's begin() on the instance) with
// timestamps. Nothing in src/ changes; the wrappers add a few performance.now() calls per image.
// Parts of the wall time, in milliseconds (they add up to it):
//   first     from the call to the first addImage: the setup queries, both queries' first chunk
//             (DuckDB sorts all their rows by image id before the first one), the first rows → inputs
//   next      between one image's outcome rows and the next addImage: waiting for rows from DuckDB
//             (when a chunk is not there yet), the merge by image, rows → engine inputs (for segm:
//             polygons rasterised and masks decoded); and from the last image to finish()
//   addImage  CocoEvaluator.addImage (matching, the per-detection log, error kinds)
//   write     EvaluationService.write: one image's outcome rows into the appenders, of which
//   append      ChunkedAppender's hand-overs to DuckDB (chunks copied in, flushes)
//   finish    CocoEvaluator.finish (accumulate, summarize, curves)
//   store     EvaluationWriter.finish (last flushes, the evaluation row, the curves) and COMMIT, of which
//   curves      the curves' INSERT
//   other     the rest: reading the stored evaluation back
// And, overlapping the parts above: gtFetch / dtFetch, the time each query's chunks were being
// fetched (Database.stream's next(): DuckDB's work and the chunk turned into row objects), which
// the service may overlap with the evaluator's work.
import { Database } from '../../dist/services/db/connection.js';
import { ChunkedAppender } from '../../dist/services/db/chunked-appender.js';
import { EvaluationWriter } from '../../dist/services/db/evaluations.js';
import { CocoEvaluator } from '../../dist/services/evaluation/coco-eval.js';
import { EvaluationService } from '../../dist/services/evaluation/evaluations.js';

export function instrument(dv) {
  const ms = {};
  const add = (key, t0, t1 = performance.now()) => (ms[key] = (ms[key] ?? 0) + t1 - t0);
  let started = 0;
  let lastWrite = null;
  const wrapSync = (proto, method, key, before, after) => {
    const original = proto[method];
    proto[method] = function (...args) {
      const t0 = performance.now();
      before?.(t0);
      try {
        return original.apply(this, args);
      } finally {
        const t1 = performance.now();
        add(key, t0, t1);
        after?.(t1);
      }
    };
  };
  const wrapAsync = (target, method, key) => {
    const original = target[method];
    target[method] = async function (...args) {
      const t0 = performance.now();
      try {
        return await original.apply(this, args);
      } finally {
        add(key, t0);
      }
    };
  };

  const stream = Database.prototype.stream;
  Database.prototype.stream = function (...args) {
    const it = stream.apply(this, args);
    const key = /label_set = 0/.test(args[0]) ? 'gtFetch' : 'dtFetch';
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        const t0 = performance.now();
        try {
          return await it.next();
        } finally {
          add(key, t0);
        }
      },
      return: (v) => it.return(v),
      throw: (e) => it.throw(e),
    };
  };
  const gap = (t) => {
    if (lastWrite === null) add('first', started, t);
    else add('next', lastWrite, t);
  };
  wrapSync(CocoEvaluator.prototype, 'addImage', 'addImage', gap);
  wrapSync(CocoEvaluator.prototype, 'finish', 'finish', gap);
  wrapSync(EvaluationService.prototype, 'write', 'write', null, (t) => (lastWrite = t));
  // appendChunk is private in TypeScript, an ordinary method here. flush() calls it too: timed
  // as a whole, with the inner call left out.
  let flushing = false;
  const appendChunk = ChunkedAppender.prototype.appendChunk;
  ChunkedAppender.prototype.appendChunk = function () {
    if (flushing) return appendChunk.call(this);
    const t0 = performance.now();
    try {
      return appendChunk.call(this);
    } finally {
      add('append', t0);
    }
  };
  const flush = ChunkedAppender.prototype.flush;
  ChunkedAppender.prototype.flush = function () {
    const t0 = performance.now();
    flushing = true;
    try {
      return flush.call(this);
    } finally {
      flushing = false;
      add('append', t0);
    }
  };
  wrapAsync(EvaluationWriter.prototype, 'finish', 'store');
  const begin = dv.db.begin.bind(dv.db);
  dv.db.begin = async () => {
    const tx = await begin();
    wrapAsync(tx, 'commit', 'store');
    const run = tx.run;
    tx.run = async (sql, params) => {
      const t0 = performance.now();
      try {
        return await run(sql, params);
      } finally {
        if (/eval_curves/.test(sql)) add('curves', t0);
      }
    };
    return tx;
  };

  return {
    /** Call right before evaluate(). */
    start() {
      for (const k of Object.keys(ms)) delete ms[k];
      started = performance.now();
      lastWrite = null;
    },
    report(seconds) {
      const r = (k) => Math.round(ms[k] ?? 0);
      const parts = ['first', 'next', 'addImage', 'write', 'finish', 'store'];
      const other = seconds * 1000 - parts.reduce((sum, k) => sum + (ms[k] ?? 0), 0);
      return {
        first: r('first'), next: r('next'), addImage: r('addImage'), write: r('write'), append: r('append'), finish: r('finish'),
        store: r('store'), curves: r('curves'), other: Math.round(other), gtFetch: r('gtFetch'), dtFetch: r('dtFetch'),
      };
    },
  };
}
