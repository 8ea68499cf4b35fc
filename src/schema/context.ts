import { initContextCache } from '@pothos/core';
import type { DataVisor } from '../services/app.js';
import type { PredictionRun } from '../services/predictions/predictions.js';

/** What every resolver sees. DataLoaders live in Pothos' per-context cache, so each request gets its own. */
export interface GraphQLContext {
  dv: DataVisor;
  /** The origin the client reached us at: image URLs are built on it so they work as they are in `<img>`. */
  origin: string;
  /** Prediction runs by dataset, looked up once per request (names of annotations' label sets). */
  runs?: Map<string, Promise<PredictionRun[]>>;
}

export function createContext(dv: DataVisor, request: Request): GraphQLContext {
  // initContextCache keeps the loader cache when yoga copies the context object.
  return { ...initContextCache(), dv, origin: new URL(request.url).origin };
}
