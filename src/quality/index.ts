/**
 * Quality on labelled rows: score a version (anchor sets, the device's holdout), the gate on
 * every activation, and the paired comparison that trials and the watch after commit run
 * between a new version and its predecessor.
 */
export { mcnemarOneSided, PairedTally, formatP, type PairedPolicy, type PairedJudgement } from './paired.js';
export { scoreModel, scorable, gateRows, labelNamer, type LabelledSet, type ScoreResult, type LabelNamer } from './score.js';
export { runGate, decideGate, gateError, GATE_SKIPPED, type GatePolicy, type GateResult, type GateOptions } from './gate.js';
export { tallyLabelled } from './shadow.js';
export { activateGatedOffline, type OfflineGateOptions } from './offline.js';
