export { RunStore, type RunSummary, type RunDetail, type TrialRecord, type RunKind, type RunStatus } from './run-store.js';
export { TRAINING_MIGRATIONS } from './migrations.js';
