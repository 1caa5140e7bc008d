import { rowSize } from '../bundle/index.js';
import { TYPED_ARRAYS, type Engine, type EngineTensor, type HealthStats } from '../engine/index.js';

export interface TrialPolicy {
  minInferences: number;
  maxErrorRate: number;
  maxP99Factor: number;
  windowSeconds: number;
  onQuietWindow: 'commit' | 'rollback';
}

export type TrialVerdict = { pass: true; reason: string } | { pass: false; reason: string } | undefined;

/** Paired engine timings a latency verdict needs: fewer and noise could decide it. */
export const MIN_LATENCY_PAIRS = 30;
/** Pairs after which a slow-looking but not significant median no longer holds the verdict back. */
export const MAX_LATENCY_PAIRS = 300;
/** A regression must be this unlikely under "no slower than maxP99Factor" (one-sided sign test). */
const LATENCY_ALPHA = 0.001;

/** The latency comparison so far, as judgeTrial reads it. */
export interface LatencyEvidence {
  pairs: number;
  /** Median over pairs of (new ms / previous ms). */
  medianRatio: number;
  /** Pairs where the new version took more than maxP99Factor times the previous one. */
  slower: number;
}

/**
 * The new version and its predecessor timed on the same input, one right after the other
 * (ABBA order), so both see the same load: a CPU hog or a burst slows both, and the ratio
 * of a pair stays near 1 for byte-identical versions. p99s of separate periods do not.
 */
export class PairedLatency {
  private readonly ratios: number[] = [];
  private slowerCount = 0;
  private busy = false;

  constructor(private readonly factor: number) {}

  record(newMs: number, previousMs: number): void {
    const ratio = newMs / Math.max(previousMs, 1e-3);
    this.ratios.push(ratio);
    if (this.ratios.length > 4096) this.ratios.shift();
    if (ratio > this.factor) this.slowerCount++;
  }

  evidence(): LatencyEvidence {
    const sorted = [...this.ratios].sort((a, b) => a - b);
    const n = sorted.length;
    const medianRatio = n === 0 ? 1 : n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    return { pairs: n, medianRatio, slower: this.slowerCount };
  }

  /**
   * Time `pairs` pairs on a zero input of `rows` rows. Off the request path (the trial timer);
   * one probe at a time; engine failures are the traffic's to judge, so they end the probe.
   */
  async probe(next: Engine, previous: Engine, pairs: number, rows: number): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      if (!sameInputs(next, previous)) return;
      // The same (zero) values, shaped as each engine declares them.
      const nextFeeds = zeroFeeds(next, rows);
      const previousFeeds = zeroFeeds(previous, rows);
      for (let i = 0; i < pairs; i++) {
        // ABBA: alternate which one runs first, so warm caches favour neither.
        const first = i % 2 === 0;
        const a = first ? await time(next, nextFeeds) : await time(previous, previousFeeds);
        const b = first ? await time(previous, previousFeeds) : await time(next, nextFeeds);
        this.record(first ? a : b, first ? b : a);
      }
    } catch {
      // a disposed or failing engine: no timing
    } finally {
      this.busy = false;
    }
  }
}

/**
 * The fastest of three runs: an await also measures whatever else the event loop ran before
 * resuming us (requests, the load), a delay that only ever adds; the minimum sheds most of it.
 */
async function time(engine: Engine, feeds: Record<string, EngineTensor>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await engine.run(feeds);
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

function zeroFeeds(engine: Engine, rows: number): Record<string, EngineTensor> {
  const feeds: Record<string, EngineTensor> = {};
  for (const spec of engine.inputs) feeds[spec.name] = { dtype: spec.dtype, data: new TYPED_ARRAYS[spec.dtype](rows * rowSize(spec)), dims: [rows, ...spec.shape.slice(1)] };
  return feeds;
}

function sameInputs(a: Engine, b: Engine): boolean {
  return a.inputs.length === b.inputs.length && a.inputs.every((s, i) => s.name === b.inputs[i].name && s.dtype === b.inputs[i].dtype && rowSize(s) === rowSize(b.inputs[i]));
}

/** P(X >= k) for X ~ Binomial(n, 1/2): the one-sided sign test. */
function signTestP(k: number, n: number): number {
  let logC = 0; // log C(n, 0)
  let p = 0;
  for (let i = 0; i <= n; i++) {
    if (i > 0) logC += Math.log((n - i + 1) / i);
    if (i >= k) p += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, p);
}

/**
 * Slower beyond noise: the median pair is over maxP99Factor slower AND significantly more
 * than half the pairs are (sign test at LATENCY_ALPHA), over at least MIN_LATENCY_PAIRS pairs.
 */
export function latencyRegression(e: LatencyEvidence, factor: number): boolean {
  return e.pairs >= MIN_LATENCY_PAIRS && e.medianRatio > factor && signTestP(e.slower, e.pairs) < LATENCY_ALPHA;
}

/**
 * Judge a version on trial against its policy and the version it replaced (`latency`: paired
 * timings against it, null when there is none to compare with). Returns a verdict once one can
 * be given, undefined while the trial must go on.
 */
export function judgeTrial(health: HealthStats, startedAt: number, latency: LatencyEvidence | null, policy: TrialPolicy, now = Date.now()): TrialVerdict {
  const { ok, failed } = health;
  const total = ok + failed;
  // Enough failures to fail the trial whatever comes next.
  if (failed > Math.max(1, policy.maxErrorRate * Math.max(total, policy.minInferences))) {
    return { pass: false, reason: `trial failed: ${failed} of ${total} requests failed (limit ${(policy.maxErrorRate * 100).toFixed(1)}%)` };
  }
  const windowEnded = now - startedAt >= policy.windowSeconds * 1000;
  if (latency && latencyRegression(latency, policy.maxP99Factor)) {
    return { pass: false, reason: `trial failed: engine ${latency.medianRatio.toFixed(2)}x slower than the previous version (median of ${latency.pairs} paired timings; ${latency.slower} over ${policy.maxP99Factor}x)` };
  }
  if (total >= policy.minInferences) {
    // Not yet enough paired timings to rule a regression out: wait for them (not past the window).
    // Nor commit while the median pair is over the factor without significance yet (a loaded
    // machine makes pairs noisy): more pairs decide it, up to MAX_LATENCY_PAIRS.
    const undecided = latency && (latency.pairs < MIN_LATENCY_PAIRS || (latency.medianRatio > policy.maxP99Factor && latency.pairs < MAX_LATENCY_PAIRS));
    if (undecided && !windowEnded) return undefined;
    // The engine's own time: request latency also counts queueing, which depends on the load.
    const p99 = health.engine.percentile(99);
    const speed = latency && latency.pairs > 0 ? `, engine ${latency.medianRatio.toFixed(2)}x the previous version (median of ${latency.pairs} paired timings)` : '';
    return { pass: true, reason: `trial passed: ${total} requests, ${failed} failed, p99 engine latency ${p99 === null ? 'n/a' : p99.toFixed(2)} ms${speed}` };
  }
  if (windowEnded) {
    const why = `trial window ended with ${total} of ${policy.minInferences} requests needed, ${failed} failed`;
    return policy.onQuietWindow === 'commit' && failed === 0 ? { pass: true, reason: why } : { pass: false, reason: `trial failed: ${why}` };
  }
  return undefined;
}

/** The labelled side of a trial: paired rows so far and whether they say "worse". */
export interface LabelEvidence {
  paired: number;
  worse: boolean;
  summary: string;
}

/**
 * Combine the traffic verdict with the paired comparison on labels. Labels win when they
 * exist: significantly worse fails the trial at once; minPaired rows that are not worse pass
 * it, even before minInferences requests arrived. Error-rate and latency failures still fail.
 * While some labelled rows arrived but fewer than minPaired, traffic alone does not commit:
 * the trial waits for the labels until its window ends (then the traffic verdict stands).
 */
export function judgeTrialWithLabels(traffic: TrialVerdict, labels: LabelEvidence | undefined, minPaired: number, windowEnded: boolean): TrialVerdict {
  if (labels?.worse) return { pass: false, reason: `trial failed on labels: ${labels.summary}` };
  if (traffic && !traffic.pass) return traffic;
  if (labels && labels.paired >= minPaired) return { pass: true, reason: `trial passed on labels: ${labels.summary}` };
  if (labels && labels.paired > 0) {
    if (!windowEnded) return undefined;
    return traffic ? { pass: true, reason: `${traffic.reason}; only ${labels.paired} of ${minPaired} paired labelled rows (${labels.summary})` } : undefined;
  }
  return traffic;
}
