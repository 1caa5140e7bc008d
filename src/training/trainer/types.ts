import type { ModelSpec } from '../spec/index.js';
import type { TrainingBackend } from './backend.js';

/** Rows for fitting: standardised features (row-major) and targets. */
export interface FitData {
  x: Float32Array;
  /** Classification: class index; regression: the target in its own units. */
  y: Float32Array;
  rows: number;
}

/** Everything the trainer needs; plain data, so it crosses a worker boundary as is. */
export interface FitJob {
  spec: ModelSpec;
  /** Values per row (the flattened input size). */
  features: number;
  /** Classes, or 1 for regression. */
  outputUnits: number;
  /** Regression: mean and std of the training target (the model learns the standardised target). */
  targetScale?: { mean: number; std: number };
  train: FitData;
  validation?: FitData;
  /** Training backend, or 'auto' (tensorflow > wasm > cpu, whichever covers the model's kernels). */
  backend?: TrainingBackend | 'auto';
  /** tfjs model name. */
  name?: string;
}

/** One epoch of the history: Keras-style metric names (loss, accuracy, val_loss, val_accuracy, val_mae). */
export interface EpochRecord {
  epoch: number;
  metrics: Record<string, number>;
  ms: number;
}

/** How a fit went. */
export interface FitSummary {
  backend: string;
  /** Why backends before `backend` were not used. */
  skipped: string[];
  history: EpochRecord[];
  epochsRun: number;
  /** Epoch whose weights the model keeps (1-based). */
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Why training ended before its last epoch, if it did. */
  stopReason?: string;
  durationMs: number;
  /** Training rows processed per second of fitting (validation excluded). */
  samplesPerSecond: number;
  params: number;
}

/** What the trainer reports while it runs. */
export type TrainerEvent =
  | { type: 'backend'; backend: string; skipped: string[] }
  | { type: 'epoch-start'; epoch: number; epochs: number; batches: number }
  | { type: 'batch'; epoch: number; batch: number; batches: number; loss: number }
  | { type: 'epoch-end'; record: EpochRecord; improved: boolean }
  | { type: 'stopped'; epoch: number; bestEpoch: number; reason: string };
