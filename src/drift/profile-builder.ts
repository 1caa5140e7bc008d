import { REFERENCE_FORMAT, parseReference, type ReferenceCalibration, type ReferenceProfile } from '../bundle/index.js';
import { prng } from '../training/data/index.js';
import { anchorIndices, buildReferenceProfile, histogram, quantileEdges, type AnchorSample } from '../training/reference/index.js';
import type { WindowScores } from './evaluate.js';
import { DriftMonitor, type PredictionLike } from './monitor.js';
import { driftOptions } from './options.js';
import { pca, project } from './pca.js';

/** Reference data with the model's outputs on it. */
export interface ProfileData {
  features: string[];
  /** rows x features raw values (as devices send them), row-major. */
  x: Float32Array;
  rows: number;
  task: 'classification' | 'regression' | 'embedding';
  /** Per row, as the daemon post-processes it: {index, confidence} for classifiers, {value} for regression. */
  predictions?: PredictionLike[];
  /** Classifiers: class probabilities, rows x labels.length. Regression: one value per row. */
  outputs?: Float32Array;
  labels?: string[];
  /** True labels or targets, when the data has them (for the anchor sample). */
  truth?: (string | number)[];
}

export interface ProfileOptions {
  /** Quantile bins per feature (default 10). */
  bins?: number;
  /** Projection components monitored besides the inputs (default 4 when there are 16 inputs or more, else 0). */
  components?: number;
  /** Rows per calibration chunk: the window size the thresholds are for (default: min(1000, rows)); 0 skips calibration. */
  chunkRows?: number;
  /** Bootstrap chunks (default 20). */
  chunks?: number;
  /** Calibrated threshold = mean + sigma * std over chunks (default 3). */
  sigma?: number;
  seed?: number;
}

const BINNING = 'quantile edges; bin i = [edges[i], edges[i+1]), last bin closed; below/above = underflow/overflow' as const;

/**
 * Build a reference profile: per-feature quantile histograms and the prediction profile (the
 * training toolchain's builder, so both write the same format), plus the drift monitor's
 * extensions: a PCA projection for wide inputs and thresholds calibrated on bootstrap chunks
 * of the reference itself.
 */
export function buildDriftProfile(data: ProfileData, opts: ProfileOptions = {}): ReferenceProfile {
  const { features, x, rows } = data;
  const d = features.length;
  if (rows < 2) throw new Error(`a reference profile needs at least 2 rows, got ${rows}`);
  const bins = opts.bins ?? 10;
  const indices = Array.from({ length: rows }, (_, i) => i);
  const picked = anchorIndices(indices, 32);
  const width = data.outputs && data.task === 'classification' ? (data.labels?.length ?? 0) : 1;
  const anchor: AnchorSample = {
    rows: picked.map((r) => Array.from(x.subarray(r * d, (r + 1) * d))),
    truth: data.truth ? picked.map((r) => data.truth![r]) : [],
    outputs: data.outputs ? picked.map((r) => Array.from(data.outputs!.subarray(r * width, (r + 1) * width), (v) => Math.round(v * 1e6) / 1e6)) : [],
  };
  let base: ReferenceProfile;
  if (data.outputs && (data.task === 'classification' || data.task === 'regression')) {
    base = buildReferenceProfile({
      features,
      train: x,
      trainRows: rows,
      validationOutputs: data.outputs,
      validationRows: rows,
      labels: data.task === 'classification' ? data.labels : undefined,
      anchor,
      bins,
    });
  } else {
    base = {
      format: REFERENCE_FORMAT,
      binning: BINNING,
      rows: { train: rows, validation: 0 },
      features: features.map((name, j) => {
        const col = Array.from({ length: rows }, (_, r) => x[r * d + j]);
        return { name, ...histogram(col, quantileEdges(col, bins)) };
      }),
      anchor,
    };
  }
  if (!data.truth) delete base.anchor;

  const k = Math.min(opts.components ?? (d >= 16 ? 4 : 0), d);
  if (k > 0) addProjection(base, x, rows, k, { bins, seed: opts.seed });
  const profile = parseReference(base, 'reference profile');
  const chunkRows = opts.chunkRows ?? Math.min(1000, rows);
  if (chunkRows > 0) profile.calibration = calibrate(profile, data, chunkRows, opts.sigma ?? 3, opts.seed ?? 1, opts.chunks ?? 20);
  return profile;
}

/**
 * Add the low-dimensional view of wide inputs to a profile (in place): the first `k`
 * principal components of the standardised reference rows, and their histograms (pc1..pck) on
 * quantile edges, monitored like features. For profiles built elsewhere (the training
 * toolchain) that want it too.
 */
export function addProjection(profile: ReferenceProfile, x: Float32Array, rows: number, k: number, opts: { bins?: number; seed?: number } = {}): ReferenceProfile {
  const d = profile.features.length;
  const p = pca(x, rows, d, k, { seed: opts.seed ?? 1 });
  profile.projection = {
    method: 'pca',
    center: p.center,
    scale: p.scale,
    components: p.components,
    variance: p.variance,
    explained: p.explained,
    features: project(p, x, rows).map((col, c) => {
      const arr = Array.from(col);
      return { name: `pc${c + 1}`, ...histogram(arr, quantileEdges(arr, opts.bins ?? 10)) };
    }),
  };
  return profile;
}

const meanPlusSigma = (v: number[], sigma: number): number => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
  return Number((m + sigma * sd).toPrecision(4));
};

/**
 * Thresholds from the reference itself: draw `chunks` bootstrap chunks of `chunkRows` rows
 * (with replacement, so each chunk is a fresh sample of the reference distribution of a
 * window's size), score each against the whole profile exactly as the monitor scores a
 * window, and take mean + sigma * std of each statistic per channel.
 */
export function calibrate(profile: ReferenceProfile, data: ProfileData, chunkRows: number, sigma: number, seed: number, chunks = 20): ReferenceCalibration {
  const d = data.features.length;
  const rand = prng(seed);
  const monitor = new DriftMonitor({ model: 'calibration', version: '-', profile, options: driftOptions({ window: { rows: chunkRows, minRows: 1 } }) });
  const chunkX = new Float32Array(chunkRows * d);
  const scores: WindowScores[] = [];
  for (let c = 0; c < chunks; c++) {
    const ids = Array.from({ length: chunkRows }, () => Math.floor(rand() * data.rows));
    ids.forEach((r, i) => chunkX.set(data.x.subarray(r * d, (r + 1) * d), i * d));
    monitor.observe(chunkX, ids.length, data.predictions ? ids.map((r) => data.predictions![r]) : undefined);
    const pending = monitor.collect();
    if (!pending) continue;
    monitor.assignLocalIds(pending);
    monitor.committed(pending);
    scores.push(...pending.records.map((rec) => rec.scores));
  }
  const channels = monitor.layout.channels;
  const stat = (i: number, key: 'psi' | 'js' | 'wasserstein') => meanPlusSigma(scores.map((s) => s.channels[i][key]), sigma);
  const features = channels.flatMap((ch, i) => (ch.kind === 'output' ? [] : [{ name: ch.name, psi: stat(i, 'psi'), js: stat(i, 'js'), wasserstein: stat(i, 'wasserstein') }]));
  const out = monitor.layout.output;
  const predictions = scores.every((s) => s.predictions) ? { psi: meanPlusSigma(scores.map((s) => s.predictions!.psi), sigma), js: meanPlusSigma(scores.map((s) => s.predictions!.js), sigma) } : undefined;
  return {
    chunkRows,
    chunks,
    sigma,
    features,
    predictions,
    confidence: out >= 0 ? { psi: stat(out, 'psi'), js: stat(out, 'js'), wasserstein: stat(out, 'wasserstein') } : undefined,
  };
}
