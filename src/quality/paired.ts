/**
 * Paired comparison of two versions on the same labelled rows. Only the rows where they
 * disagree about being right carry information (McNemar): b = the new version is wrong where
 * the old one is right, c = the other way round. Under "neither is better" each discordant
 * row is a fair coin, so b ~ Binomial(b + c, 1/2), and the one-sided p-value of "the new
 * version is worse" is P(X >= b). Regression uses the same test on which of the two absolute
 * errors is larger (a sign test; ties carry no information and are left out).
 */

/**
 * Exact one-sided McNemar p-value: P(X >= b) for X ~ Binomial(b + c, 1/2).
 * 1 when there are no discordant pairs (nothing says the new version is worse).
 */
export function mcnemarOneSided(b: number, c: number): number {
  if (!Number.isInteger(b) || !Number.isInteger(c) || b < 0 || c < 0) throw new RangeError(`mcnemarOneSided: b and c must be non-negative integers, got ${b}, ${c}`);
  const n = b + c;
  if (n === 0 || b === 0) return 1;
  // log C(n, k) - n log 2, summed in log space: exact enough for n in the hundred thousands.
  const logHalfN = -n * Math.LN2;
  let logC = logChoose(n, b);
  let logSum = logC + logHalfN;
  for (let k = b + 1; k <= n; k++) {
    logC += Math.log((n - k + 1) / k);
    const term = logC + logHalfN;
    const hi = Math.max(logSum, term);
    logSum = hi + Math.log(Math.exp(logSum - hi) + Math.exp(term - hi));
    // The terms shrink fast past the mode: stop once they no longer change the sum.
    if (k > n / 2 && term - logSum < -40) break;
  }
  return Math.min(1, Math.exp(logSum));
}

function logChoose(n: number, k: number): number {
  let s = 0;
  const m = Math.min(k, n - k);
  for (let i = 1; i <= m; i++) s += Math.log((n - m + i) / i);
  return s;
}

/** What "worse" means: by more than a margin, and significantly (both, see {@link PairedTally.judge}). */
export interface PairedPolicy {
  /** Classification: accuracy points (0-1) the new version may lose. */
  maxAccuracyDrop: number;
  /** Regression: share by which the new version's MAE may exceed the old one's. */
  maxMaeIncrease: number;
  /** Significance of the one-sided paired test. */
  alpha: number;
}

/** The outcome of a paired comparison. */
export interface PairedJudgement {
  worse: boolean;
  /** One-sided p-value that the new version is worse. */
  p: number;
  /** One line with the numbers, for histories and events. */
  summary: string;
}

/** Running paired counts of a new version against an old one (gate, trial, watch). */
export class PairedTally {
  n = 0;
  /** New wrong (or larger error) where old right (or smaller error). */
  b = 0;
  /** New right (or smaller error) where old wrong (or larger error). */
  c = 0;
  newRight = 0;
  oldRight = 0;
  newAbsError = 0;
  oldAbsError = 0;

  constructor(
    readonly task: 'classification' | 'regression',
    /** The old version's name in summaries ("1.0.0"). */
    readonly oldVersion: string,
  ) {}

  addClassified(newOk: boolean, oldOk: boolean): void {
    this.n++;
    if (newOk) this.newRight++;
    if (oldOk) this.oldRight++;
    if (!newOk && oldOk) this.b++;
    else if (newOk && !oldOk) this.c++;
  }

  addRegressed(newAbsError: number, oldAbsError: number): void {
    this.n++;
    this.newAbsError += newAbsError;
    this.oldAbsError += oldAbsError;
    if (newAbsError > oldAbsError) this.b++;
    else if (newAbsError < oldAbsError) this.c++;
  }

  get p(): number {
    return mcnemarOneSided(this.b, this.c);
  }

  /**
   * Worse = significantly worse AND worse by more than the margin. Significance alone would
   * roll back a version that is a hair worse once enough rows arrive; the margin alone would
   * refuse a good version on noise: on 32 anchor rows one row is 3 accuracy points, so a
   * 2-point margin would trip on a single unlucky row.
   */
  judge(policy: PairedPolicy): PairedJudgement {
    const p = this.p;
    if (this.n === 0) return { worse: false, p, summary: 'no paired rows' };
    const significant = p < policy.alpha;
    if (this.task === 'classification') {
      const drop = (this.oldRight - this.newRight) / this.n;
      const summary = `${this.newRight} of ${this.n} paired rows right vs ${this.oldRight} of ${this.n} for ${this.oldVersion}, McNemar p=${formatP(p)}`;
      return { worse: significant && drop > policy.maxAccuracyDrop, p, summary };
    }
    const newMae = this.newAbsError / this.n;
    const oldMae = this.oldAbsError / this.n;
    const increase = oldMae > 0 ? (newMae - oldMae) / oldMae : newMae > 0 ? Infinity : 0;
    const summary = `MAE ${round(newMae)} vs ${round(oldMae)} for ${this.oldVersion} on ${this.n} paired rows (larger error on ${this.b}, smaller on ${this.c}), sign test p=${formatP(p)}`;
    return { worse: significant && increase > policy.maxMaeIncrease, p, summary };
  }
}

/** p-values in histories: 3 significant digits, exponent form when small. */
export function formatP(p: number): string {
  return p >= 0.001 ? p.toPrecision(3) : p.toExponential(2);
}

function round(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4);
}
