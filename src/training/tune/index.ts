export { tunePipeline, type TunePipelineOptions, type TunePipelineResult, type RankedTrial } from './tune.js';
export { crossValidate, higherIsBetter, metricValue, TUNE_METRICS, type TuneMetric, type CrossValidation } from './cross-validate.js';
export { parseGrid, readGrid, expandGrid, applyParams, formatParams, MAX_COMBINATIONS, type ParamGrid, type ParamSet } from './grid.js';
