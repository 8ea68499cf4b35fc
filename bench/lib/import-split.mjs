// Where dv.predictions.import spends its time, measured from outside (as eval-split.mjs does for
// evaluate): RunWriter's methods are wrapped on their prototype, and the commits of every
// transaction through the database's begin() on the instance.
//
//   begin     RunWriter.begin: the name check in the change, the run's ids, the appenders
//   append    RunWriter.append: batches of matched detections into annotations' appender (DuckDB's
//             appends run in this call, on the main thread)
//   finish    RunWriter.finish: the appenders' last rows, the sorted INSERT of rows that came out
//             of sample order (none for a file in the dataset's order), the label set
//   commit    the change's COMMIT (and the dataset's revision)
//   read      the rest: reading the file, parsing it into batches (threads), matching the samples
import { RunWriter } from '../../dist/services/db/predictions.js';

export function instrument(dv) {
  const ms = {};
  const add = (key, t0) => (ms[key] = (ms[key] ?? 0) + performance.now() - t0);
  const timed = (target, method, key) => {
    const original = target[method];
    target[method] = function (...args) {
      const t0 = performance.now();
      const r = original.apply(this, args);
      if (r instanceof Promise) return r.finally(() => add(key, t0));
      add(key, t0);
      return r;
    };
  };
  timed(RunWriter, 'begin', 'begin');
  timed(RunWriter.prototype, 'append', 'append');
  timed(RunWriter.prototype, 'finish', 'finish');
  const begin = dv.db.begin.bind(dv.db);
  dv.db.begin = async () => {
    const tx = await begin();
    timed(tx, 'commit', 'commit');
    return tx;
  };
  return {
    report(seconds) {
      const r = (k) => Math.round(ms[k] ?? 0);
      return {
        read: Math.round(seconds * 1000 - r('begin') - r('append') - r('finish') - r('commit')),
        begin: r('begin'),
        append: r('append'),
        finish: r('finish'),
        commit: r('commit'),
      };
    },
  };
}
