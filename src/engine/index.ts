export type { Engine, EngineTensor, EngineOptions, TypedArray } from './engine.js';
export { TYPED_ARRAYS } from './engine.js';
export { tfjsArtifacts } from './tfjs-artifacts.js';
export type { BackendChoice } from './tfjs-backend.js';
// OnnxEngine and TfjsEngine are loaded on demand by loadModel (see load-engine.ts).

/** Pick the process-wide tfjs backend (tensorflow > wasm > cpu by default); loads tfjs on first use. */
export async function selectTfjsBackend(...args: Parameters<typeof import('./tfjs-backend.js').selectTfjsBackend>) {
  return (await import('./tfjs-backend.js')).selectTfjsBackend(...args);
}
export { loadModel, type LoadedModel } from './load-engine.js';
export { MicroBatcher, type BatcherOptions, type BatcherStats, type RowsResult } from './micro-batcher.js';
export { ServedModel, HealthStats, LatencyRing, busyError, type Prediction, type PredictResult } from './served-model.js';
