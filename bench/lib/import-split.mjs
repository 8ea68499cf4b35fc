// Where dv.predictions.import spends its time, measured from outside (as eval-split.mjs does for
// evaluate): PredictionWriter's methods are wrapped on their prototype, and the transaction's
// statements and commit through the database's begin() on the instance.
//
//   append    PredictionWriter.append: a batch of parsed detections into the staging appender
//   check     finish()'s two checks of image and category ids against the dataset
//   store     finish()'s INSERT of the staged rows into annotations (joined to samples, sorted)
//   shapes    finish()'s INSERT into annotation_shapes
//   finishRest the rest of finish(): closing the appender (its last flush), ids, label set, DROP
//   commit    COMMIT (and the dataset's revision)
//   read      the rest: reading the file and parsing it into batches (the results reader)
import { PredictionWriter } from '../../dist/services/db/predictions.js';

export function instrument(dv) {
  const ms = {};
  const add = (key, t0) => (ms[key] = (ms[key] ?? 0) + performance.now() - t0);
  const append = PredictionWriter.prototype.append;
  PredictionWriter.prototype.append = function (columns) {
    const t0 = performance.now();
    try {
      return append.call(this, columns);
    } finally {
      add('append', t0);
    }
  };
  const finish = PredictionWriter.prototype.finish;
  PredictionWriter.prototype.finish = async function () {
    const t0 = performance.now();
    try {
      return await finish.call(this);
    } finally {
      add('finish', t0);
    }
  };
  const kind = (sql) => (/ANTI JOIN/.test(sql) ? 'check' : /INSERT INTO annotations/.test(sql) ? 'store' : /INSERT INTO annotation_shapes/.test(sql) ? 'shapes' : null);
  const begin = dv.db.begin.bind(dv.db);
  dv.db.begin = async () => {
    const tx = await begin();
    for (const method of ['run', 'query']) {
      const original = tx[method];
      tx[method] = async (sql, params) => {
        const t0 = performance.now();
        try {
          return await original(sql, params);
        } finally {
          const k = kind(sql);
          if (k) add(k, t0);
        }
      };
    }
    const commit = tx.commit;
    tx.commit = async () => {
      const t0 = performance.now();
      try {
        return await commit();
      } finally {
        add('commit', t0);
      }
    };
    return tx;
  };
  return {
    report(seconds) {
      const r = (k) => Math.round(ms[k] ?? 0);
      const inFinish = (ms.check ?? 0) + (ms.store ?? 0) + (ms.shapes ?? 0);
      return {
        read: Math.round(seconds * 1000 - (ms.append ?? 0) - (ms.finish ?? 0) - (ms.commit ?? 0)),
        append: r('append'),
        check: r('check'),
        store: r('store'),
        shapes: r('shapes'),
        finishRest: Math.round((ms.finish ?? 0) - inFinish),
        commit: r('commit'),
      };
    },
  };
}
