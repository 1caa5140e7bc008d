/**
 * The drift reference a bundle carries (manifest `reference`): fixed per-feature quantile bins
 * from the training split, the distribution of predictions on the validation split, and a
 * frozen anchor sample of the test split. Live windows are histograms on the same edges, so
 * they are cheap to keep, merge and compare.
 */

/** Histogram of one feature (raw units) on fixed edges. */
export interface FeatureProfile {
  name: string;
  /** Ascending, distinct bin edges: bin i is [edges[i], edges[i+1]), the last bin also holds edges[last]. */
  edges: number[];
  counts: number[];
  /** Values below edges[0] / above edges[last] (0 on the training split by construction). */
  underflow: number;
  overflow: number;
  mean: number;
  std: number;
  min: number;
  max: number;
}

export type PredictionProfile =
  | {
      kind: 'classification';
      labels: string[];
      /** Rows predicted as each label. */
      counts: number[];
      /** Top-1 probability histogram on fixed edges 0, 0.1, …, 1. */
      confidence: { edges: number[]; counts: number[] };
    }
  | ({ kind: 'regression' } & Omit<FeatureProfile, 'name'>);

export interface AnchorSample {
  /** Raw input rows (as devices send them). */
  rows: number[][];
  /** True labels (classification) or targets (regression). */
  truth: (string | number)[];
  /** This model's first output on each row (probabilities or value), 6 decimals. */
  outputs: number[][];
}

export interface ReferenceProfile {
  format: 'edgeloop-reference/1';
  /** How values map to bins, for the monitor that builds windows on the same edges. */
  binning: 'quantile edges; bin i = [edges[i], edges[i+1]), last bin closed; below/above = underflow/overflow';
  rows: { train: number; validation: number };
  features: FeatureProfile[];
  predictions: PredictionProfile;
  anchor: AnchorSample;
}

/** The bin of `v`: -1 for underflow, edges.length - 1 (the bin count) for overflow. */
export function assignBin(edges: readonly number[], v: number): number {
  const last = edges.length - 1;
  if (v < edges[0]) return -1;
  if (v > edges[last]) return last;
  if (v === edges[last]) return last - 1;
  let lo = 0;
  let hi = last;
  // Largest i with edges[i] <= v.
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] <= v) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Quantile edges (nearest rank at 0, 1/bins, …, 1) with duplicates removed; a constant
 * column gets the single bin [c, c].
 */
export function quantileEdges(values: readonly number[], bins: number): number[] {
  const sorted = Float64Array.from(values).sort();
  const edges: number[] = [];
  for (let i = 0; i <= bins; i++) {
    const v = sorted[Math.min(sorted.length - 1, Math.round((i / bins) * (sorted.length - 1)))];
    if (edges.length === 0 || v > edges[edges.length - 1]) edges.push(v);
  }
  if (edges.length === 1) edges.push(edges[0]);
  return edges;
}

/** Histogram of values on given edges, with moments and range. */
export function histogram(values: readonly number[], edges: number[]): Omit<FeatureProfile, 'name'> {
  const counts = new Array<number>(edges.length - 1).fill(0);
  let underflow = 0;
  let overflow = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    const b = assignBin(edges, v);
    if (b < 0) underflow++;
    else if (b >= counts.length) overflow++;
    else counts[b]++;
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = sum / values.length;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  return { edges, counts, underflow, overflow, mean, std, min, max };
}

export interface ProfileInput {
  features: string[];
  /** Raw training rows, row-major. */
  train: Float32Array;
  trainRows: number;
  /** Model outputs on the validation rows (probabilities rows, or one value per row). */
  validationOutputs: Float32Array;
  validationRows: number;
  labels?: string[];
  anchor: AnchorSample;
  bins?: number;
}

const CONFIDENCE_EDGES = Array.from({ length: 11 }, (_, i) => i / 10);

export function buildReferenceProfile(p: ProfileInput): ReferenceProfile {
  const bins = p.bins ?? 10;
  const cols = p.features.length;
  const features = p.features.map((name, j) => {
    const col = Array.from({ length: p.trainRows }, (_, r) => p.train[r * cols + j]);
    return { name, ...histogram(col, quantileEdges(col, bins)) };
  });
  let predictions: PredictionProfile;
  if (p.labels) {
    const k = p.labels.length;
    const counts = new Array<number>(k).fill(0);
    const confidence = new Array<number>(CONFIDENCE_EDGES.length - 1).fill(0);
    for (let r = 0; r < p.validationRows; r++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (p.validationOutputs[r * k + c] > p.validationOutputs[r * k + best]) best = c;
      counts[best]++;
      const b = assignBin(CONFIDENCE_EDGES, p.validationOutputs[r * k + best]);
      confidence[Math.max(0, Math.min(confidence.length - 1, b))]++;
    }
    predictions = { kind: 'classification', labels: p.labels, counts, confidence: { edges: CONFIDENCE_EDGES, counts: confidence } };
  } else {
    const values = Array.from(p.validationOutputs.subarray(0, p.validationRows));
    predictions = { kind: 'regression', ...histogram(values, quantileEdges(values, bins)) };
  }
  return {
    format: 'edgeloop-reference/1',
    binning: 'quantile edges; bin i = [edges[i], edges[i+1]), last bin closed; below/above = underflow/overflow',
    rows: { train: p.trainRows, validation: p.validationRows },
    features,
    predictions,
    anchor: p.anchor,
  };
}

/** Evenly spaced rows of `indices` (at most `max`), so the anchor covers the whole test split. */
export function anchorIndices(indices: readonly number[], max = 32): number[] {
  if (indices.length <= max) return [...indices];
  return Array.from({ length: max }, (_, i) => indices[Math.floor((i * indices.length) / max)]);
}
