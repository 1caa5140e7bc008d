export type { Engine, EngineTensor, EngineOptions, TypedArray } from './engine.js';
export { TYPED_ARRAYS } from './engine.js';
export { OnnxEngine } from './onnx-engine.js';
export { TfjsEngine, tfjsArtifacts } from './tfjs-engine.js';
export { selectTfjsBackend, type BackendChoice } from './tfjs-backend.js';
export { loadModel, type LoadedModel } from './load-engine.js';
export { MicroBatcher, type BatcherOptions, type BatcherStats, type RowsResult } from './micro-batcher.js';
export { ServedModel, HealthStats, LatencyRing, type Prediction, type PredictResult } from './served-model.js';
