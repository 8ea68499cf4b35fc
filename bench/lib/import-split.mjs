// Where dv.predictions.import spends its time, measured from outside (as eval-split.mjs does for
// evaluate): PredictionWriter's methods are wrapped on their prototype, and the statements and
// commits of every transaction through the database's begin() on the instance.
//
//   append    PredictionWriter.append: a batch of parsed detections into the scratch table's appender
//   stage     check()'s commit of the scratch table (the appender's last flush, the rows written)
//   check     check()'s join of the staged rows to samples and categories (CREATE TABLE … AS) and its two refusals
//   checkRest the rest of check(): the split, the revision, dropping the rows as read
//   wait      between check() and store(): the dataset's turn and its change beginning
//   store     store()'s INSERT of the checked rows into annotations (sorted)
//   shapes    store()'s INSERT into annotation_shapes
//   storeRest the rest of store(): the name, the revision, ids, the label set
//   commit    the change's COMMIT (and the dataset's revision)
//   discard   dropping the checked rows' scratch table
//   read      the rest: reading the file and parsing it into batches (the results reader)
import { PredictionWriter } from '../../dist/services/db/predictions.js';

export function instrument(dv) {
  const ms = {};
  const add = (key, t0) => (ms[key] = (ms[key] ?? 0) + performance.now() - t0);
  const wrap = (method, key, after) => {
    const original = PredictionWriter.prototype[method];
    PredictionWriter.prototype[method] = function (...args) {
      const t0 = performance.now();
      const done = () => {
        add(key, t0);
        after?.();
      };
      const r = original.apply(this, args);
      if (r instanceof Promise) return r.finally(done);
      done();
      return r;
    };
  };
  let checkedAt = null;
  let waited = false;
  wrap('append', 'append');
  wrap('check', 'checkAll', () => (checkedAt = performance.now()));
  wrap('store', 'storeAll');
  wrap('discard', 'discard');
  /** 'change' from store() until discard(): the change's COMMIT falls between them. */
  let phase = 'before';
  const discardTimed = PredictionWriter.prototype.discard;
  PredictionWriter.prototype.discard = function (...args) {
    phase = 'after';
    return discardTimed.apply(this, args);
  };
  const storeOriginal = PredictionWriter.prototype.store;
  PredictionWriter.prototype.store = function (...args) {
    if (checkedAt !== null && !waited) {
      waited = true;
      add('wait', checkedAt);
    }
    phase = 'change';
    return storeOriginal.apply(this, args);
  };
  const kind = (sql) =>
    /^CREATE TABLE staging_fpred|^SELECT ord, (image_id|category_id) AS v/.test(sql.trim()) ? 'check'
      : /INSERT INTO annotations/.test(sql) ? 'store'
        : /INSERT INTO annotation_shapes/.test(sql) ? 'shapes' : null;
  const begin = dv.db.begin.bind(dv.db);
  let transactions = 0;
  dv.db.begin = async () => {
    const tx = await begin();
    const n = transactions++;
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
        // The first transaction is the scratch table's (committed by check()); others commit inside check() and discard().
        if (n === 0) add('stage', t0);
        else if (phase === 'change') add('commit', t0);
      }
    };
    return tx;
  };
  return {
    report(seconds) {
      const r = (k) => Math.round(ms[k] ?? 0);
      return {
        read: Math.round(seconds * 1000 - r('append') - r('checkAll') - r('wait') - r('storeAll') - r('commit') - r('discard')),
        append: r('append'),
        stage: r('stage'),
        check: r('check'),
        checkRest: r('checkAll') - r('stage') - r('check'),
        wait: r('wait'),
        store: r('store'),
        shapes: r('shapes'),
        storeRest: r('storeAll') - r('store') - r('shapes'),
        commit: r('commit'),
        discard: r('discard'),
      };
    },
  };
}
