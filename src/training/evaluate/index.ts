export { enginePredict, layersPredict, predictAll, standardizeLikeDaemon, toProbabilities, argmaxRows, type Predict } from './predict.js';
export { scoreClassification, scoreRegression, summarize, agreement, type Evaluation } from './score.js';
export { evaluateBundle, evaluateLoaded, scoreOutputs, provenanceOfManifest, type BundleEvaluation, type EvaluateOptions } from './evaluate-bundle.js';
