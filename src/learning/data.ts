import type { Manifest } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { prng, shuffle } from '../training/data/split.js';
import { fitStandardizer, standardizeLikeDaemon, type Standardizer } from '../training/data/standardize.js';
import type { TrainRows } from './types.js';

/** Rows ready to fit: standardised inputs and class indices. */
export interface FitRows {
  x: Float32Array;
  y: Float32Array;
  rows: number;
  /** Soft targets (rows x classes) used instead of one-hot labels when present. */
  targets?: Float32Array;
}

/** The fine-tuning data: training mix, validation split, and the preprocessing the candidate keeps. */
export interface FineTuneData {
  train: FitRows;
  validation: FitRows;
  /** The validation rows raw, to score the parent with its own preprocessing. */
  validationRaw: Float32Array;
  standardize: Standardizer | undefined;
  counts: { new: number; replay: number; validation: number };
  timeRange?: { from: number; to: number };
}

/** Fewest new rows worth a run: below this the validation split cannot stop anything sensibly. */
export const MIN_NEW_ROWS = 20;

/** Values per row of a TrainRows (its `features`, or x.length / rows). */
export function featuresOf(r: TrainRows): number {
  return r.features ?? (r.rows ? r.x.length / r.rows : 0);
}

/** The bundle's frozen anchor sample as labelled raw rows (label names mapped to class indices). */
export function anchorRows(m: Manifest): TrainRows | undefined {
  const anchor = (m.reference as { anchor?: { rows: number[][]; truth: (string | number)[] } } | undefined)?.anchor;
  if (!anchor || anchor.rows.length === 0) return undefined;
  const labels = m.labels ?? [];
  const y = anchor.truth.map((t) => (labels.length ? labels.indexOf(String(t)) : Number(t)));
  if (y.some((v) => v < 0 || !Number.isFinite(v))) return undefined;
  const features = anchor.rows[0].length;
  return { x: Float32Array.from(anchor.rows.flat()), y: Float32Array.from(y), rows: anchor.rows.length, features };
}

function pick(r: TrainRows, idx: readonly number[], cols: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(idx.length * cols);
  const y = new Float32Array(idx.length);
  idx.forEach((row, i) => {
    x.set(r.x.subarray(row * cols, (row + 1) * cols), i * cols);
    y[i] = r.y[row];
  });
  return { x, y };
}

function concat(parts: { x: Float32Array; y: Float32Array }[], cols: number): { x: Float32Array; y: Float32Array; rows: number } {
  const rows = parts.reduce((a, p) => a + p.y.length, 0);
  const x = new Float32Array(rows * cols);
  const y = new Float32Array(rows);
  let at = 0;
  for (const p of parts) {
    x.set(p.x, at * cols);
    y.set(p.y, at);
    at += p.y.length;
  }
  return { x, y, rows };
}

/**
 * Build the fine-tuning data. A seeded share of the new rows is held out as validation (early
 * stopping picks the best weights on it); the rest is mixed with up to `replayRows` replay rows
 * (the bundle's anchor rows first, then the reservoir) against forgetting, and a matching share
 * of replay rows joins the validation split so forgetting shows there too. Inputs keep the
 * parent's standardisation unless `refit`.
 */
export function buildFineTuneData(o: {
  manifest: Manifest;
  rows: TrainRows;
  replay?: TrainRows;
  replayRows: number;
  validationFraction: number;
  refit: boolean;
  seed: number;
  classes: number;
}): FineTuneData {
  const cols = featuresOf(o.rows);
  const check = (r: TrainRows, what: string) => {
    if (featuresOf(r) !== cols) throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `${what} have ${featuresOf(r)} values per row, the new rows ${cols}`);
    for (const v of r.y) if (!Number.isInteger(v) || v < 0 || v >= o.classes) throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `${what}: label ${v} is not a class index 0..${o.classes - 1}`);
  };
  check(o.rows, 'labelled rows');
  if (o.rows.rows < MIN_NEW_ROWS) throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `fine-tuning needs at least ${MIN_NEW_ROWS} labelled rows, got ${o.rows.rows}`);
  const anchor = anchorRows(o.manifest);
  const replaySources = [anchor, o.replay].filter((r): r is TrainRows => !!r && r.rows > 0);
  replaySources.forEach((r, i) => check(r, i === 0 && anchor ? "the bundle's anchor rows" : 'replay rows'));

  const rand = prng(o.seed);
  const order = shuffle(Array.from({ length: o.rows.rows }, (_, i) => i), rand);
  const nVal = Math.max(1, Math.round(order.length * o.validationFraction));
  const newVal = pick(o.rows, order.slice(0, nVal), cols);
  const newTrain = pick(o.rows, order.slice(nVal), cols);

  const replayTrain: { x: Float32Array; y: Float32Array }[] = [];
  const replayVal: { x: Float32Array; y: Float32Array }[] = [];
  let budget = o.replayRows;
  let replayCount = 0;
  for (const src of replaySources) {
    const take = shuffle(Array.from({ length: src.rows }, (_, i) => i), rand).slice(0, Math.max(0, budget));
    budget -= take.length;
    const v = Math.round(take.length * o.validationFraction);
    replayVal.push(pick(src, take.slice(0, v), cols));
    replayTrain.push(pick(src, take.slice(v), cols));
    replayCount += take.length - v;
  }
  const trainRaw = concat([newTrain, ...replayTrain], cols);
  const valRaw = concat([newVal, ...replayVal], cols);
  const parentStd = o.manifest.preprocessing.standardize;
  const standardize = o.refit ? fitStandardizer(trainRaw.x, cols, Array.from({ length: trainRaw.rows }, (_, i) => i)) : parentStd;
  const at = o.rows.at?.filter((t) => Number.isFinite(t));
  return {
    train: { x: standardizeLikeDaemon(trainRaw.x, standardize), y: trainRaw.y, rows: trainRaw.rows },
    validation: { x: standardizeLikeDaemon(valRaw.x, standardize), y: valRaw.y, rows: valRaw.rows },
    validationRaw: valRaw.x,
    standardize,
    counts: { new: o.rows.rows - nVal, replay: replayCount, validation: valRaw.rows },
    ...(at && at.length ? { timeRange: { from: Math.min(...at), to: Math.max(...at) } } : {}),
  };
}
