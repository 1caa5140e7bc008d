/**
 * The training toolchain: CSV data preparation, model specs, the trainer (in-process or in a
 * worker thread), evaluation, export and quantization, drift reference profiles, tuning,
 * ensembles and the experiment log.
 */
export * from './data/index.js';
export * from './spec/index.js';
export * from './trainer/index.js';
export * from './metrics/index.js';
export * from './evaluate/index.js';
export * from './export/index.js';
export * from './reference/index.js';
export * from './charts/index.js';
export * from './runs/index.js';
export * from './pipeline/index.js';
export { saveTfjsArtifacts, toFloat16Bytes, quantizeUint8, TFJS_MODEL_FILE, TFJS_WEIGHTS_FILE, type TfjsQuantization } from './tfjs-export.js';
export { exportToOnnx, type ExportOnnxOptions } from './onnx/export-onnx.js';
export * from './tune/index.js';
export * from './ensemble/index.js';
