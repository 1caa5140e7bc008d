export { exportVariant, parseVariant, outputName, withTrainableSource, VARIANTS, ONNX_MODEL_FILE, TRAINABLE_SOURCE_DIR, type Variant, type VariantArtifacts, type ExportVariantOptions } from './variants.js';
export { memoryBundle } from './memory-bundle.js';
export { exportBundle, type ExportOptions, type ExportTarget, type ExportedBundle, type ExportResult, type MeasuredModel } from './export-bundle.js';
export { measureThroughput, recommend, DEFAULT_TOLERANCE, MEASURE_BATCHES, MEASURE_MS, MEASURE_WINDOWS, type Throughput, type Candidate, type Recommendation } from './measure.js';
