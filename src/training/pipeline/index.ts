export { trainPipeline, trainPrepared, runMetrics, engineBackendFirst, EVAL_ENGINE_OPTIONS, type TrainPipelineOptions, type TrainPipelineResult, type TrainedBundle } from './train.js';
export { prepareData, prepareDataset, makeFitJob, fitData, type PreparedData, type PrepareOptions } from './prepare.js';
export { packageVariants, CURVES_FILE, type BundleTarget, type PackagedBundle, type PackageOptions } from './package.js';
export { checkTargets, writeBundles } from './write.js';
