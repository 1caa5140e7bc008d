/**
 * Messages between a process and its trainer worker thread (worker.ts):
 *
 *   parent (CLI, daemon)                          trainer worker
 *   ────────────────────                          ──────────────
 *   { type: 'start', job }           ─────────▶   choose backend, build, fit
 *                                    ◀─────────   { type: 'event', event }  backend, epoch-start,
 *                                                  batch, epoch-end, stopped (any number)
 *   { type: 'stop' }                 ─────────▶   finish the current epoch, keep the best weights
 *                                    ◀─────────   { type: 'done', summary, model }
 *                                                  or { type: 'error', code, message }
 *
 * The worker has its own tfjs instance and backend, so training never changes the backend the
 * parent's engines serve with. The model travels as tfjs artifacts; its weight buffer is
 * transferred, not copied.
 */
import type { FitJob, FitSummary, TrainerEvent } from './types.js';

/** A trained model in transit: the LayersModel topology and float32 weights. */
export interface SerializedModel {
  modelTopology: object;
  weightSpecs: { name: string; shape: number[]; dtype: string }[];
  weightData: ArrayBuffer;
}

export type ToTrainer = { type: 'start'; job: FitJob } | { type: 'stop' };

export type FromTrainer =
  | { type: 'event'; event: TrainerEvent }
  | { type: 'done'; summary: FitSummary; model: SerializedModel }
  | { type: 'error'; code: string; message: string };
