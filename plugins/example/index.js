/**
 * DataVisor example plugin: shows every hook of the plugin contract (../../docs/plugins.md).
 *
 * It tags each sample with its aspect ratio and orientation, which the API then returns in the
 * sample's `metadata` (and which a grid can filter or group on). Hooks take one object argument,
 * so fields added to it later never break this plugin.
 */

/** Ingests seen since activation, by dataset id: what onIngestComplete reports on. */
const running = new Map();

export default {
  name: 'example',
  description: 'Adds aspect_ratio and orientation to every sample\'s metadata',

  onActivate() {
    running.clear();
  },

  onDeactivate() {
    running.clear();
  },

  onIngestStart({ context }) {
    running.set(context.datasetId, { started: Date.now(), tagged: 0 });
  },

  // Runs once per image, so it stays synchronous and cheap: a promise would cost a timer per sample.
  onSampleIngested({ context, sample }) {
    if (!sample.width || !sample.height) return undefined;
    const ratio = sample.width / sample.height;
    const state = running.get(context.datasetId);
    if (state) state.tagged++;
    return {
      ...sample,
      metadata: {
        ...sample.metadata,
        aspect_ratio: Math.round(ratio * 1000) / 1000,
        orientation: ratio > 1.05 ? 'landscape' : ratio < 0.95 ? 'portrait' : 'square',
      },
    };
  },

  onIngestComplete({ context, stats, log }) {
    const state = running.get(context.datasetId);
    running.delete(context.datasetId);
    if (!state) return;
    // One line per ingest, not one per sample.
    log.info(
      { dataset_id: context.datasetId, tagged: state.tagged, untagged: stats.image_count - state.tagged, ms: Date.now() - state.started },
      'example plugin tagged samples with their aspect ratio',
    );
  },
};
