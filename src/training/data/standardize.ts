import type { Manifest } from '../../bundle/index.js';

/** Per-feature mean and standard deviation, as stored in a bundle's preprocessing.standardize. */
export interface Standardizer {
  mean: number[];
  std: number[];
}

/**
 * Fit on the rows `indices` of a row-major table. Population standard deviation; a constant
 * feature gets std 1, so it maps to 0 instead of NaN.
 */
export function fitStandardizer(x: Float32Array, cols: number, indices: readonly number[]): Standardizer {
  const mean = new Array<number>(cols).fill(0);
  const sq = new Array<number>(cols).fill(0);
  for (const r of indices) for (let j = 0; j < cols; j++) mean[j] += x[r * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= indices.length;
  for (const r of indices) {
    for (let j = 0; j < cols; j++) {
      const d = x[r * cols + j] - mean[j];
      sq[j] += d * d;
    }
  }
  const std = sq.map((s) => Math.sqrt(s / indices.length) || 1);
  return { mean, std };
}

/** (x - mean) / std for every row; returns a new array. */
export function standardize(x: Float32Array, s: Standardizer): Float32Array {
  const cols = s.mean.length;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % cols;
    out[i] = (x[i] - s.mean[j]) / s.std[j];
  }
  return out;
}

/** Mean and population std of a target vector (std 1 when constant). */
export function targetScale(y: ArrayLike<number>, indices: readonly number[]): { mean: number; std: number } {
  let mean = 0;
  for (const i of indices) mean += y[i];
  mean /= indices.length;
  let sq = 0;
  for (const i of indices) sq += (y[i] - mean) ** 2;
  return { mean, std: Math.sqrt(sq / indices.length) || 1 };
}

/** Standardise raw rows as the daemon does: (x - mean) * (1 / std), in float32. */
export function standardizeLikeDaemon(x: Float32Array, standardize: Manifest['preprocessing']['standardize']): Float32Array {
  if (!standardize) return Float32Array.from(x);
  const mean = Float32Array.from(standardize.mean);
  const inv = Float32Array.from(standardize.std, (s) => (s > 0 ? 1 / s : 1));
  const n = mean.length;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - mean[i % n]) * inv[i % n];
  return out;
}
