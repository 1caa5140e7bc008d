export { runFit, type RunFitOptions, type FitOutcome } from './run-fit.js';
export { fitModel, modelToArtifacts, type FitHooks } from './fit.js';
export { selectTrainingBackend, kernelsOfTrainingStep, currentBackend, TRAINING_BACKENDS, type TrainingBackend, type TrainingBackendChoice } from './backend.js';
export { installFastCpuConvGradient, uninstallFastCpuConvGradient, useFastCpuConvGradient } from './cpu-conv-gradient.js';
export type { FromTrainer, ToTrainer, SerializedModel } from './protocol.js';
export type { FitJob, FitData, FitSummary, EpochRecord, TrainerEvent } from './types.js';
