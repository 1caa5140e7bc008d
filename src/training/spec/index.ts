export { modelSpecSchema, layerSchema, ACTIVATIONS, LAYER_TYPES, type ModelSpec, type ModelSpecInput, type LayerSpec } from './schema.js';
export { parseModelSpec, readModelSpec, inferShapes } from './validate.js';
export { buildModel, buildOptimizer, compileModel, describeArchitecture, TARGET_SCALE_LAYER, type BuiltModel, type BuildOptions } from './build-model.js';
