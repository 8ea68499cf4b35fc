import type { ColumnBuffers } from '../../../records/columns.js';
import type { PartRequest } from '../../../common/parse-parts.js';
import type { RecordEvent } from '../../../records/events.js';
import type { AnnotationRecord, CategoryRecord, ImageRecord, LicenseRecord } from '../../../records/types.js';

/** What coco-reader.ts hands out, one call per array element as soon as the element closes. */
export type CocoSection = 'info' | 'licenses' | 'images' | 'annotations' | 'categories';

export interface CocoSink {
  section(name: CocoSection): void;
  info(info: Record<string, unknown>): void;
  license(license: LicenseRecord): void;
  image(image: ImageRecord): void;
  annotation(annotation: AnnotationRecord): void;
  category(category: CategoryRecord): void;
}

/** A record event, with COCO's own sections (info and licenses are not record sections). */
export type ParseEvent = Exclude<RecordEvent, { kind: 'section' }> | { kind: 'section'; name: CocoSection };

/** The arrays of a batch the main thread is done with, for the thread to build its next batches in. */
export type RecycledBatch = { kind: 'images' | 'annotations'; buffers: ColumnBuffers };
export type WorkerRequest = PartRequest<RecycledBatch>;
export type WorkerResponse =
  /** `block`: the forwarded block, read to its end and handed back to be read into again. */
  | { type: 'batch'; bytesRead: number; events: ParseEvent[]; block?: ArrayBuffer }
  /** `ok`: the part's text ended right after an element of the annotations array. */
  | { type: 'checkpoint'; bytesRead: number; ok: boolean; sections: string[]; nonStandardNumbers: number; events: ParseEvent[] }
  | { type: 'done'; bytesRead: number; nonStandardNumbers: number; sections: string[]; events: ParseEvent[] }
  | { type: 'error'; code: string; message: string };
