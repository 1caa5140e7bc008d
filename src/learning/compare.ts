import { openModelSource } from '../bundle/index.js';
import { loadModel, type EngineOptions } from '../engine/index.js';
import { argmaxRows, enginePredict, predictAll, standardizeLikeDaemon, toProbabilities } from '../training/evaluate/index.js';
import { EVAL_ENGINE_OPTIONS } from '../training/pipeline/index.js';
import { mcnemarOneSided } from '../quality/paired.js';
import { anchorRows, featuresOf } from './data.js';
import type { TrainRows } from './types.js';

/** Options of {@link compareCandidate}; learning.minGain / learning.maxAnchorDrop. */
export interface CompareOptions {
  minGain: number;
  maxAnchorDrop: number;
  /** The gain must also be beyond chance: one-sided exact McNemar p-value at most this (default 0.05). */
  maxPValue?: number;
  engine?: EngineOptions;
}

/** Accuracy of both versions on one set of rows (paired: the same rows). */
export interface PairedScore {
  rows: number;
  parent: number;
  candidate: number;
  /** Rows only the candidate gets right / only the parent gets right. */
  candidateOnly: number;
  parentOnly: number;
}

export interface CompareResult {
  promote: boolean;
  /** Why, in one sentence. */
  reason: string;
  numbers: {
    holdout: PairedScore & { gain: number; pValue: number };
    anchor?: PairedScore & { drop: number };
    minGain: number;
    maxAnchorDrop: number;
    maxPValue: number;
  };
}

/** P(X >= k) for X ~ Binomial(n, 1/2): the one-sided exact McNemar test on discordant pairs (src/quality's). */
export function mcnemarPValue(k: number, n: number): number {
  return mcnemarOneSided(k, n - k);
}

/** Top-1 class of every row through a bundle's real engine, with its own preprocessing. */
async function classify(dir: string, x: Float32Array, rows: number, engine: EngineOptions): Promise<number[]> {
  const { manifest, engine: e } = await loadModel(await openModelSource(dir), engine);
  try {
    const out = await predictAll(enginePredict(e), standardizeLikeDaemon(x, manifest.preprocessing.standardize), rows);
    return argmaxRows(toProbabilities(out.data, out.width, manifest.outputKind), out.width);
  } finally {
    await e.dispose();
  }
}

/** Accuracy of a bundle (served by its real engine, with its own preprocessing) on labelled raw rows. */
export async function bundleAccuracy(dir: string, r: TrainRows, engine: EngineOptions = EVAL_ENGINE_OPTIONS): Promise<number> {
  const pred = await classify(dir, r.x, r.rows, engine);
  return pred.filter((p, i) => p === r.y[i]).length / r.rows;
}

async function paired(parentDir: string, candidateDir: string, r: TrainRows, engine: EngineOptions): Promise<PairedScore> {
  const a = await classify(parentDir, r.x, r.rows, engine);
  const b = await classify(candidateDir, r.x, r.rows, engine);
  let pa = 0;
  let pb = 0;
  let bOnly = 0;
  let aOnly = 0;
  for (let i = 0; i < r.rows; i++) {
    const ra = a[i] === r.y[i];
    const rb = b[i] === r.y[i];
    pa += +ra;
    pb += +rb;
    if (rb && !ra) bOnly++;
    if (ra && !rb) aOnly++;
  }
  return { rows: r.rows, parent: pa / r.rows, candidate: pb / r.rows, candidateOnly: bOnly, parentOnly: aOnly };
}

/**
 * The promotion gate of a fine-tuned candidate: both versions scored by the real engines on
 * the same labelled rows. Promote only when the candidate beats the parent on the holdout (recent
 * labelled rows it never trained on) by at least `minGain`, the gain is beyond chance (paired
 * McNemar), and it is not worse on the anchor set (default: the parent's frozen anchor rows) by
 * more than `maxAnchorDrop`.
 */
export async function compareCandidate(parentDir: string, candidateDir: string, holdout: TrainRows, anchor: TrainRows | undefined, opts: CompareOptions): Promise<CompareResult> {
  const engine = opts.engine ?? EVAL_ENGINE_OPTIONS;
  const maxPValue = opts.maxPValue ?? 0.05;
  const h = await paired(parentDir, candidateDir, { ...holdout, features: featuresOf(holdout) }, engine);
  const gain = h.candidate - h.parent;
  const pValue = mcnemarPValue(h.candidateOnly, h.candidateOnly + h.parentOnly);
  const anchorSet = anchor ?? anchorRows((await openModelSource(parentDir).then((s) => (s.kind === 'bundle' ? s.bundle.manifest : undefined)))!);
  const a = anchorSet && anchorSet.rows > 0 ? await paired(parentDir, candidateDir, anchorSet, engine) : undefined;
  const drop = a ? a.parent - a.candidate : 0;
  const numbers = { holdout: { ...h, gain, pValue }, ...(a ? { anchor: { ...a, drop } } : {}), minGain: opts.minGain, maxAnchorDrop: opts.maxAnchorDrop, maxPValue };
  const pct = (v: number) => `${(v * 100).toFixed(1)} points`;
  if (h.rows === 0) return { promote: false, reason: 'no holdout rows to compare on', numbers };
  if (gain < opts.minGain) return { promote: false, reason: `holdout gain ${pct(gain)} is below minGain ${pct(opts.minGain)}`, numbers };
  if (pValue > maxPValue) return { promote: false, reason: `holdout gain ${pct(gain)} could be chance (McNemar p = ${pValue.toFixed(3)} > ${maxPValue})`, numbers };
  if (drop > opts.maxAnchorDrop) return { promote: false, reason: `anchor accuracy drops ${pct(drop)}, more than maxAnchorDrop ${pct(opts.maxAnchorDrop)}`, numbers };
  return { promote: true, reason: `holdout +${pct(gain)} (p = ${pValue.toFixed(3)}), anchor ${drop > 0 ? `-${pct(drop)}` : 'not worse'}`, numbers };
}
