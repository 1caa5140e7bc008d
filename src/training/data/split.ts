import { EdgeloopError } from '../../errors.js';

/** mulberry32: a tiny seeded PRNG (uniform in [0, 1)), so splits and epoch orders are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle in place. */
export function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Fractions of the rows for training, validation and test; they sum to 1. */
export interface SplitFractions {
  train: number;
  validation: number;
  test: number;
}

export const DEFAULT_SPLIT: SplitFractions = { train: 0.6, validation: 0.2, test: 0.2 };

/** Row indices of each part. Test indices are sorted; train and validation are shuffled. */
export interface Split {
  train: number[];
  validation: number[];
  test: number[];
}

/** Parse "0.6,0.2,0.2" (or "60,20,20"). */
export function parseFractions(text: string): SplitFractions {
  const parts = text.split(/[,/:]/).map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    throw new EdgeloopError('EDGELOOP_USAGE', `--split must be three non-negative numbers train,validation,test (e.g. 0.6,0.2,0.2), got '${text}'`);
  }
  const sum = parts[0] + parts[1] + parts[2];
  return checkFractions({ train: parts[0] / sum, validation: parts[1] / sum, test: parts[2] / sum });
}

export function checkFractions(f: SplitFractions): SplitFractions {
  const sum = f.train + f.validation + f.test;
  if (Math.abs(sum - 1) > 1e-6 || f.train <= 0 || f.test <= 0 || f.validation < 0) {
    throw new EdgeloopError('EDGELOOP_USAGE', `split fractions must be train > 0, validation >= 0, test > 0 and sum to 1, got ${f.train}/${f.validation}/${f.test}`);
  }
  return f;
}

/**
 * Split `n` rows into train/validation/test with a seed. With `strata` (a class per row) each
 * class is split in the same proportions (largest-remainder rounding per class), so small
 * classes appear in every part they can.
 */
export function splitRows(n: number, fractions: SplitFractions, seed: number, strata?: ArrayLike<number>): Split {
  checkFractions(fractions);
  const rand = prng(seed);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const key = strata ? strata[i] : 0;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(i);
  }
  const split: Split = { train: [], validation: [], test: [] };
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const idx = shuffle(groups.get(key)!, rand);
    const [nTrain, nVal] = apportion(idx.length, [fractions.train, fractions.validation, fractions.test]);
    split.train.push(...idx.slice(0, nTrain));
    split.validation.push(...idx.slice(nTrain, nTrain + nVal));
    split.test.push(...idx.slice(nTrain + nVal));
  }
  shuffle(split.train, rand);
  shuffle(split.validation, rand);
  split.test.sort((a, b) => a - b);
  return split;
}

/** Integer counts proportional to `weights` summing to `n` (largest remainder; ties to the earlier part). */
function apportion(n: number, weights: number[]): number[] {
  const exact = weights.map((w) => w * n);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left-- <= 0) break;
    counts[i]++;
  }
  return counts;
}

/**
 * k folds over `indices` (stratified by `strata` when given: each class is dealt round-robin
 * across the folds after a seeded shuffle). Returns the held-out indices of each fold.
 */
export function kFolds(indices: readonly number[], k: number, seed: number, strata?: ArrayLike<number>): number[][] {
  if (!Number.isInteger(k) || k < 2) throw new EdgeloopError('EDGELOOP_USAGE', `--folds must be an integer >= 2, got ${k}`);
  if (indices.length < k) throw new EdgeloopError('EDGELOOP_DATA_INVALID', `${k} folds need at least ${k} rows, got ${indices.length}`);
  const rand = prng(seed);
  const groups = new Map<number, number[]>();
  for (const i of indices) {
    const key = strata ? strata[i] : 0;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(i);
  }
  const folds: number[][] = Array.from({ length: k }, () => []);
  let next = 0;
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    for (const i of shuffle(groups.get(key)!, rand)) folds[next++ % k].push(i);
  }
  return folds;
}
