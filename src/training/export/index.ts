export { exportVariant, parseVariant, outputName, VARIANTS, ONNX_MODEL_FILE, type Variant, type VariantArtifacts, type ExportVariantOptions } from './variants.js';
export { memoryBundle } from './memory-bundle.js';
export { exportBundle, type ExportOptions, type ExportTarget, type ExportedBundle } from './export-bundle.js';
