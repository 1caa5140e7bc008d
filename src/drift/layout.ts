import { createHash } from 'node:crypto';
import type { ReferenceFeature, ReferenceProfile } from '../bundle/index.js';

/** What a monitored channel is: a model input, a projection component, or the model's output (confidence or regression value). */
export type ChannelKind = 'input' | 'component' | 'output';

/**
 * One monitored one-dimensional quantity with its reference histogram. Slots are
 * [underflow, bin 0, ..., bin n-1, overflow]: `edges.length + 1` of them.
 */
export interface Channel {
  name: string;
  kind: ChannelKind;
  /** Bin edges in the units devices send (raw). */
  edges: readonly number[];
  /** Reference counts per slot. */
  ref: Float64Array;
  refRows: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  /** What a Wasserstein distance is divided by: the reference std (range, then 1, when the feature is constant). */
  scale: number;
  /** First slot of this channel in a window's flat count array. */
  slot: number;
  /** The profile's quantile bins collapsed (one bin held nearly every row) and were split over the value range at attach time. */
  rangeBinned?: boolean;
}

/** How windows of one reference profile are laid out, and what they are compared with. */
export interface DriftLayout {
  /** Content hash of the profile's histograms: windows with the same key add up. */
  key: string;
  /** Values per input row. */
  inputs: number;
  /** Inputs first (in model input order), then projection components, then the output channel if any. */
  channels: Channel[];
  /** Index of the output channel (confidence for classifiers, value for regression), or -1. */
  output: number;
  /** Predicted-class reference counts (classifiers). */
  classes?: { labels: readonly string[]; ref: Float64Array };
  totalSlots: number;
  /** Components as an affine map of raw inputs: pc[c] = bias[c] + sum_j weights[c * inputs + j] * x[j]. */
  projection?: { k: number; weights: Float64Array; bias: Float64Array };
  profile: ReferenceProfile;
}

/** Mean and std of a histogram from its bin centres (used when a profile gives only counts). */
function binnedMoments(edges: readonly number[], counts: readonly number[]): { mean: number; std: number } {
  let n = 0;
  let s = 0;
  let s2 = 0;
  counts.forEach((c, i) => {
    const x = (edges[i] + edges[i + 1]) / 2;
    n += c;
    s += c * x;
    s2 += c * x * x;
  });
  if (n === 0) return { mean: 0, std: 0 };
  const mean = s / n;
  return { mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)) };
}

function scaleOf(std: number, min: number, max: number): number {
  if (std > 0) return std;
  if (max > min) return max - min;
  return 1;
}

function channelOf(f: Omit<ReferenceFeature, 'name'> & { name?: string }, name: string, kind: ChannelKind, slot: number): Channel {
  const ref = new Float64Array(f.edges.length + 1);
  ref[0] = f.underflow;
  f.counts.forEach((c, i) => (ref[i + 1] = c));
  ref[f.edges.length] = f.overflow;
  const refRows = ref.reduce((a, b) => a + b, 0);
  return { name, kind, edges: f.edges, ref, refRows, mean: f.mean, std: f.std, min: f.min, max: f.max, scale: scaleOf(f.std, f.min, f.max), slot };
}

/** A bin holding at least this share of the reference rows means the quantile edges collapsed onto one value. */
export const COLLAPSED_SHARE = 0.9;
/** Equal-width bins a collapsed bin is split into. */
const RANGE_BINS = 8;

/**
 * Range bins for a feature whose quantile edges collapsed (nearly always one value, as 18 of
 * the 64 digits pixels are nearly always 0): the dominant bin [lo, hi] is split into
 * RANGE_BINS equal-width bins, so a change inside it (a corner pixel stuck at 8) moves mass
 * between bins instead of staying in one. The profile keeps no raw rows, so the reference
 * counts of the new bins are estimated from what it has: a quantile bin that collapsed holds
 * its point mass at its lower edge (every quantile equals it); the rest of the bin, a share p
 * found from the feature's mean, is spread evenly over the bin. Existing profiles get this at
 * attach time: no model is rebuilt. Undefined when the feature needs none.
 */
export function rangeBinned(f: ReferenceFeature): ReferenceFeature | undefined {
  const total = f.underflow + f.overflow + f.counts.reduce((a, b) => a + b, 0);
  if (total === 0 || !(f.max > f.min)) return undefined; // constant: any other value is over- or underflow already
  const d = f.counts.findIndex((c) => c >= COLLAPSED_SHARE * total);
  if (d < 0) return undefined;
  const lo = f.edges[d];
  const hi = f.edges[d + 1];
  if (!(hi > lo)) return undefined;
  const nd = f.counts[d];
  // The dominant bin's rows sum to the total minus the other bins' (at their centres) and the tails (at the outer edges).
  let others = f.underflow * f.min + f.overflow * f.max;
  f.counts.forEach((c, i) => {
    if (i !== d) others += c * ((f.edges[i] + f.edges[i + 1]) / 2);
  });
  const meanD = (f.mean * total - others) / nd;
  // Uniform rest of the bin: its mean is the bin's centre; p is where the bin mean says the rest lies.
  const p = Math.min(0.5, Math.max(1 / nd, (meanD - lo) / ((hi - lo) / 2)));
  const width = (hi - lo) / RANGE_BINS;
  const split = Array.from({ length: RANGE_BINS }, (_, k) => (nd * p) / RANGE_BINS + (k === 0 ? nd * (1 - p) : 0));
  const inner = Array.from({ length: RANGE_BINS - 1 }, (_, k) => lo + (k + 1) * width);
  return {
    ...f,
    edges: [...f.edges.slice(0, d + 1), ...inner, ...f.edges.slice(d + 1)],
    counts: [...f.counts.slice(0, d), ...split, ...f.counts.slice(d + 1)],
  };
}

/** Build the layout of a (validated) reference profile. */
export function buildLayout(profile: ReferenceProfile): DriftLayout {
  const channels: Channel[] = [];
  let slot = 0;
  const add = (c: Channel) => {
    channels.push(c);
    slot += c.edges.length + 1;
  };
  const rebinned: string[] = [];
  for (const f of profile.features) {
    const r = rangeBinned(f);
    if (r) rebinned.push(f.name);
    add({ ...channelOf(r ?? f, f.name, 'input', slot), ...(r ? { rangeBinned: true } : {}) });
  }
  const d = profile.features.length;
  let projection: DriftLayout['projection'];
  const p = profile.projection;
  if (p) {
    p.features.forEach((f, c) => add(channelOf(f, f.name || `pc${c + 1}`, 'component', slot)));
    const k = p.components.length;
    const weights = new Float64Array(k * d);
    const bias = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) {
        const w = p.components[c][j] * p.scale[j];
        weights[c * d + j] = w;
        bias[c] -= w * p.center[j];
      }
    }
    projection = { k, weights, bias };
  }
  let output = -1;
  let classes: DriftLayout['classes'];
  const pred = profile.predictions;
  if (pred?.kind === 'classification') {
    classes = { labels: pred.labels, ref: Float64Array.from(pred.counts) };
    const { edges, counts } = pred.confidence;
    const m = binnedMoments(edges, counts);
    output = channels.length;
    add(channelOf({ edges, counts, underflow: 0, overflow: 0, mean: m.mean, std: m.std, min: edges[0], max: edges[edges.length - 1] }, 'confidence', 'output', slot));
  } else if (pred?.kind === 'regression') {
    output = channels.length;
    add(channelOf(pred, 'prediction', 'output', slot));
  }
  const key = createHash('sha256')
    // Range-binned channels lay windows out differently: their windows must not add up with older ones.
    .update(JSON.stringify([profile.features, profile.projection ?? null, profile.predictions ?? null, ...(rebinned.length ? [{ rangeBins: RANGE_BINS, rebinned }] : [])]))
    .digest('hex')
    .slice(0, 16);
  return { key, inputs: d, channels, output, classes, totalSlots: slot, projection, profile };
}

/**
 * Slot of `v` on `edges` (the profile's binning): 0 underflow, 1 + i for bin i (the largest i
 * with edges[i] <= v; the last bin also holds edges[last]), edges.length for overflow. The
 * monitor inlines the same search; this one is for tests and offline code.
 */
export function slotOf(edges: ArrayLike<number>, v: number): number {
  const n = edges.length;
  if (v < edges[0]) return 0;
  if (v >= edges[n - 1]) return v > edges[n - 1] ? n : n - 1;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] <= v) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}
