import type { CompareResult } from './compare.js';

/**
 * Types of on-device fine-tuning (src/learning): the job the trainer process runs, the
 * messages it exchanges with its parent, and the outcome the caller gets.
 */

/** Labelled rows, row-major and raw (before the bundle's standardisation); a LabelledBatch fits. */
export interface TrainRows {
  x: Float32Array;
  /** Class index per row. */
  y: Float32Array;
  rows: number;
  /** Values per row; derived from x and rows when absent. */
  features?: number;
  /** Row times (ms since epoch), recorded as the lineage's time range. */
  at?: number[];
}

/** How the candidate is trained. 'auto' picks per bundle (see resolveStrategy). */
export type Strategy = 'auto' | 'full' | 'last-layers' | 'head';
/** What a run actually did. */
export type ResolvedStrategy = 'full' | 'last-layers' | 'head';

/** Policy knobs, as in the `learning` section of the device config. */
export interface LearningPolicy {
  strategy: Strategy;
  lastLayers: number;
  epochs: number;
  learningRate?: number;
  replayRows: number;
  refitPreprocessing: boolean;
  /** After each epoch the trainer pauses this many times the epoch's duration (0: never), for serving's tail latency. */
  pauseRatio: number;
  timeBudgetSeconds: number;
  memoryBudgetMb: number;
  nice: number;
  /**
   * 'idle': on Linux, the trainer runs under SCHED_IDLE (chrt -i 0), so it gets only the CPU that
   * serving leaves and never delays a request by a time slice; 'nice': the nice value only.
   */
  scheduling: 'idle' | 'nice';
}

export const DEFAULT_POLICY: LearningPolicy = {
  strategy: 'auto',
  lastLayers: 2,
  epochs: 60,
  replayRows: 500,
  refitPreprocessing: false,
  pauseRatio: 2,
  timeBudgetSeconds: 600,
  memoryBudgetMb: 1024,
  nice: 10,
  scheduling: 'idle',
};

/** The promotion gate, scored in the trainer process too (off the daemon's main thread): see compareCandidate. */
export interface GateJob {
  holdout: TrainRows;
  anchor?: TrainRows;
  minGain: number;
  maxAnchorDrop: number;
}

/** Everything the trainer process needs; plain data (typed arrays cross the IPC channel with advanced serialization). */
export interface FineTuneJob {
  bundleDir: string;
  /** Folder the candidate bundle is written to (atomically); must not exist yet. */
  outDir: string;
  version: string;
  rows: TrainRows;
  replay?: TrainRows;
  policy: Omit<LearningPolicy, 'timeBudgetSeconds' | 'memoryBudgetMb' | 'nice' | 'scheduling'>;
  /** Share of the new rows held out for early stopping and the candidate's metrics. */
  validationFraction: number;
  seed: number;
  /** Score the candidate against the parent here once it is built (the daemon then only reads the verdict). */
  gate?: GateJob;
}

/** What the trainer reports while it runs. */
export interface FineTuneProgress {
  stage: 'loading' | 'embedding' | 'training' | 'exporting' | 'verifying' | 'writing' | 'scoring';
  epoch?: number;
  epochs?: number;
  metrics?: Record<string, number>;
}

/** Summary of a finished run, as recorded in the candidate's `training` field. */
export interface FineTuneSummary {
  strategy: ResolvedStrategy;
  variant: string;
  backend: string;
  epochsRun: number;
  bestEpoch: number;
  trainRows: { new: number; replay: number; validation: number };
  durationMs: number;
  /** Accuracy on the fine-tuning validation split: the parent's and the candidate's (served engine). */
  validation: { parent: number; candidate: number; rows: number };
  /** Top-1 agreement of the served export with the fine-tuned float32 model on those rows. */
  exportAgreement: number;
}

/**
 * Messages between the parent and the trainer process (see finetune-worker.ts).
 */
export type ToTrainer = { type: 'start'; job: FineTuneJob };
export type FromTrainer =
  | { type: 'progress'; progress: FineTuneProgress }
  | { type: 'done'; dir: string; version: string; summary: FineTuneSummary; gate?: CompareResult }
  | { type: 'error'; code: string; message: string };

/** The outcome of {@link fineTune}: never a rejection. */
export type FineTuneResult =
  | {
      outcome: 'candidate';
      /** The verified candidate bundle folder, ready for Registry.install(dir, { source: 'finetune', parentVersion }). */
      dir: string;
      version: string;
      parentVersion: string;
      summary: FineTuneSummary;
      /** The gate's verdict when the job asked for it (FineTuneJob.gate). */
      gate?: CompareResult;
      /** Remove the candidate's temporary folder (after installing it, or to drop it). */
      discard(): Promise<void>;
    }
  | { outcome: 'failed'; code: string; message: string }
  | { outcome: 'interrupted'; reason: 'cancelled' | 'timeout' | 'killed'; message: string };
