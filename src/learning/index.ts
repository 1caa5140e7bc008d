/**
 * On-device fine-tuning: a trainer process that turns a bundle and labelled rows into a
 * verified candidate bundle (same format as its parent), and the gate that decides whether a
 * candidate beats its parent.
 */
export { fineTune, type FineTuneOptions, type FineTuneRun } from './fine-tune.js';
export { compareCandidate, bundleAccuracy, mcnemarPValue, type CompareOptions, type CompareResult, type PairedScore } from './compare.js';
export { canFineTune, resolveStrategy, parentVariant, trainablePath, nextFineTuneVersion, type TrainablePath } from './strategy.js';
export { anchorRows, buildFineTuneData, MIN_NEW_ROWS } from './data.js';
export { attachHead, type DenseHead } from './head-onnx.js';
export { applyDigitsFault, STUCK_PIXELS, type DigitsFault } from './faults.js';
export { buildCandidate } from './candidate.js';
export { DEFAULT_POLICY, type FineTuneJob, type FineTuneProgress, type FineTuneResult, type FineTuneSummary, type LearningPolicy, type ResolvedStrategy, type Strategy, type TrainRows, type FromTrainer, type ToTrainer } from './types.js';
export { LearningService, learningWorkDir, trainerGateNote, type LearningServiceOptions, type LearningEvent, type RetrainOutcome, type RetrainRequest } from './learning-service.js';
export { learningAdminRoutes, retrainRequest } from './admin.js';
export { retrainOffline } from './offline.js';
export { shiftStart, type AlertSources } from './shift.js';
