export { exportVariant, parseVariant, outputName, withTrainableSource, VARIANTS, ONNX_MODEL_FILE, TRAINABLE_SOURCE_DIR, type Variant, type VariantArtifacts, type ExportVariantOptions } from './variants.js';
export { memoryBundle } from './memory-bundle.js';
export { exportBundle, type ExportOptions, type ExportTarget, type ExportedBundle } from './export-bundle.js';
