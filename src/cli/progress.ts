import cliProgress from 'cli-progress';
import type { IngestEvent } from '../services/ingest/ingest.js';

/** Renders ingestion events: a live bar on a terminal, one line per stage elsewhere. */
export interface ProgressView {
  update(e: IngestEvent): void;
  stop(): void;
}

const STAGE_LABEL: Record<string, string> = {
  categories: 'categories ',
  parsing_images: 'images     ',
  parsing_annotations: 'annotations',
  parsing_predictions: 'predictions',
  thumbnails: 'thumbnails ',
};

export function createProgressView(stream: NodeJS.WriteStream): ProgressView {
  if (!stream.isTTY) {
    // A stage's line is written when it ends, so it carries the stage's final count.
    let pending: IngestEvent | null = null;
    const flush = () => {
      if (pending) stream.write(`${pending.stage}: ${pending.message}\n`);
      pending = null;
    };
    return {
      update(e) {
        if (pending && e.stage !== pending.stage) flush();
        if (e.stage !== 'complete' && e.stage !== 'error') pending = e;
      },
      stop: flush,
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: ' {stage} |{bar}| {percentage}% | {detail}', hideCursor: true, clearOnComplete: false, stream },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(e) {
      if (e.stage === 'complete' || e.stage === 'error') return;
      // Bytes give a real percentage while parsing; thumbnails count images.
      const [value, total] = e.stage === 'thumbnails' ? [e.current, e.total ?? 1] : [e.bytes_read, e.bytes_total ?? 1];
      const payload = { stage: STAGE_LABEL[e.stage] ?? e.stage, detail: e.message };
      if (!started) {
        bar.start(total, value, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(value, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
