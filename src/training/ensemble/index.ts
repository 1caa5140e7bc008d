export { buildEnsemble, type EnsembleOptions, type EnsembleResult } from './build-ensemble.js';
export { mergeOnnx, type OnnxMember, type MergeOptions } from './merge-onnx.js';
