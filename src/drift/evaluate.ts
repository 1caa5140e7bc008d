import type { Channel, ChannelKind, DriftLayout } from './layout.js';
import type { DriftThresholds } from './options.js';
import { chiSquareHomogeneity, jensenShannon, ksPValue, ksStatistic, psi, wasserstein1 } from './statistics.js';
import type { WindowAccumulator } from './window.js';

export type Level = 'ok' | 'warning' | 'drift';

/** How one channel of a window compares with the reference. */
export interface ChannelScore {
  name: string;
  kind: ChannelKind;
  /** Finite values in the window, and values that were NaN or infinite. */
  n: number;
  nonFinite: number;
  /** Window mean and std (raw units), and the reference's. */
  mean: number | null;
  std: number | null;
  refMean: number;
  refStd: number;
  psi: number;
  /** Jensen-Shannon distance, base 2. */
  js: number;
  /** Wasserstein-1 distance divided by the reference std. */
  wasserstein: number;
  ks: number;
  pValue: number;
  level: Level;
}

/** The verdict on one closed window. */
export interface WindowScores {
  rows: number;
  /** False when the window had fewer than minRows rows: reported, but it moves no alert. */
  judged: boolean;
  channels: ChannelScore[];
  /** Drifting inputs and components, most drifted (by PSI) first. */
  drifting: string[];
  dataset: { drifting: number; total: number; share: number; drift: boolean };
  /** Predicted-class distribution vs the reference (classifiers). */
  predictions?: { psi: number; js: number; chi2: number; df: number; pValue: number; drift: boolean };
  /** True when the window counts towards an alert. */
  drift: boolean;
}

interface Limits {
  psi: number;
  js: number;
  wasserstein: number;
}

/** Where the mass of each slot sits, for the Wasserstein distance: bin centres; tails at their mean (window) or the outer edge (reference). */
function positions(ch: Channel, under?: number, over?: number): Float64Array {
  const e = ch.edges;
  const n = e.length;
  const x = new Float64Array(n + 1);
  x[0] = under ?? e[0];
  for (let i = 0; i < n - 1; i++) x[i + 1] = (e[i] + e[i + 1]) / 2;
  x[n] = over ?? e[n - 1];
  return x;
}

/** Score one channel of a window against its reference (thresholds given; level needs the Bonferroni-corrected alpha). */
export function scoreChannel(w: WindowAccumulator, i: number, limits: Limits, t: DriftThresholds, alpha: number): ChannelScore {
  const ch = w.layout.channels[i];
  const cur = w.slots(i);
  const n = w.finite(i);
  const last = ch.edges.length;
  const under = cur[0] > 0 ? w.underSum[i] / cur[0] : undefined;
  const over = cur[last] > 0 ? w.overSum[i] / cur[last] : undefined;
  const mean = n > 0 ? w.sum[i] / n : null;
  const std = mean !== null ? Math.sqrt(Math.max(0, w.sumSq[i] / n - mean * mean)) : null;
  const s = {
    psi: n > 0 ? psi(ch.ref, cur) : 0,
    js: n > 0 ? jensenShannon(ch.ref, cur) : 0,
    wasserstein: n > 0 ? wasserstein1(positions(ch), ch.ref, positions(ch, under, over), cur) / ch.scale : 0,
    ks: n > 0 ? ksStatistic(ch.ref, cur) : 0,
  };
  const pValue = ksPValue(s.ks, ch.refRows, n);
  const crossed = { psi: s.psi >= limits.psi, js: s.js >= limits.js, wasserstein: s.wasserstein >= limits.wasserstein };
  const large = t.drivers.some((k) => crossed[k]);
  const significant = pValue < alpha || !t.requireSignificance;
  const warning = crossed.psi || crossed.js || crossed.wasserstein || s.psi >= t.psiWarning;
  const level: Level = large && significant ? 'drift' : warning ? 'warning' : 'ok';
  return { name: ch.name, kind: ch.kind, n, nonFinite: w.nonFinite[i], mean, std, refMean: ch.mean, refStd: ch.std, ...s, pValue, level };
}

/** Calibrated limits never go below this: a constant reference feature calibrates to 0. */
const MIN_CALIBRATED = 1e-3;

/** The thresholds each channel is judged by: the configured ones, or the profile's calibrated ones when asked for and present. */
export function channelLimits(layout: DriftLayout, t: DriftThresholds): Limits[] {
  const cal = t.calibrated ? layout.profile.calibration : undefined;
  const byName = new Map(cal?.features.map((f) => [f.name, f]));
  return layout.channels.map((ch) => {
    const c = ch.kind === 'output' ? cal?.confidence : byName.get(ch.name);
    if (!c) return { psi: t.psiAlert, js: t.js, wasserstein: t.wasserstein };
    return { psi: Math.max(c.psi, MIN_CALIBRATED), js: Math.max(c.js, MIN_CALIBRATED), wasserstein: Math.max(c.wasserstein, MIN_CALIBRATED) };
  });
}

/**
 * Score a closed window: every channel (PSI, JS, normalised Wasserstein, KS with its p-value,
 * Bonferroni across channels), dataset drift, prediction drift, and the window's verdict.
 */
export function scoreWindow(w: WindowAccumulator, t: DriftThresholds, minRows: number, limits = channelLimits(w.layout, t)): WindowScores {
  const layout = w.layout;
  const alpha = t.alpha / Math.max(1, layout.channels.length);
  const channels = layout.channels.map((_, i) => scoreChannel(w, i, limits[i], t, alpha));
  const judged = w.rows >= minRows;
  const features = channels.filter((c) => c.kind !== 'output');
  const drifting = features.filter((c) => c.level === 'drift').sort((a, b) => b.psi - a.psi);
  const inputs = channels.filter((c) => c.kind === 'input');
  const inputsDrifting = inputs.filter((c) => c.level === 'drift').length;
  const share = inputs.length ? inputsDrifting / inputs.length : 0;
  const dataset = { drifting: inputsDrifting, total: inputs.length, share, drift: share >= t.datasetShare };

  let predictions: WindowScores['predictions'];
  if (layout.classes && w.classes.some((c) => c > 0)) {
    const cal = t.calibrated ? layout.profile.calibration?.predictions : undefined;
    const lim = { psi: Math.max(cal?.psi ?? t.psiAlert, MIN_CALIBRATED), js: Math.max(cal?.js ?? t.js, MIN_CALIBRATED) };
    const p = psi(layout.classes.ref, w.classes);
    const js = jensenShannon(layout.classes.ref, w.classes);
    const chi = chiSquareHomogeneity(layout.classes.ref, w.classes);
    const large = p >= lim.psi || (t.drivers.includes('js') && js >= lim.js);
    const drift = large && (chi.pValue < t.alpha || !t.requireSignificance);
    predictions = { psi: p, js, chi2: chi.statistic, df: chi.df, pValue: chi.pValue, drift };
  }
  const output = layout.output >= 0 ? channels[layout.output] : undefined;
  const outputDrift = t.predictions && ((predictions?.drift ?? false) || output?.level === 'drift');
  const drift = judged && (drifting.length >= t.minDriftingFeatures || dataset.drift || outputDrift);
  return { rows: w.rows, judged, channels, drifting: drifting.map((c) => c.name), dataset, predictions, drift };
}
