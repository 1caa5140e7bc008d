import type { HealthStats } from '../engine/index.js';

export interface TrialPolicy {
  minInferences: number;
  maxErrorRate: number;
  maxP99Factor: number;
  windowSeconds: number;
  onQuietWindow: 'commit' | 'rollback';
}

export type TrialVerdict = { pass: true; reason: string } | { pass: false; reason: string } | undefined;

/**
 * Judge a version on trial against its policy and the version it replaced. Returns a verdict
 * once one can be given, undefined while the trial must go on.
 */
export function judgeTrial(health: HealthStats, startedAt: number, baselineP99: number | null, policy: TrialPolicy, now = Date.now()): TrialVerdict {
  const { ok, failed } = health;
  const total = ok + failed;
  // Enough failures to fail the trial whatever comes next.
  if (failed > Math.max(1, policy.maxErrorRate * Math.max(total, policy.minInferences))) {
    return { pass: false, reason: `trial failed: ${failed} of ${total} requests failed (limit ${(policy.maxErrorRate * 100).toFixed(1)}%)` };
  }
  if (total >= policy.minInferences) {
    // The engine's own time: request latency also counts queueing, which depends on the load.
    const p99 = health.engine.percentile(99)!;
    if (baselineP99 !== null && p99 > policy.maxP99Factor * baselineP99) {
      return { pass: false, reason: `trial failed: p99 engine latency ${p99.toFixed(2)} ms is over ${policy.maxP99Factor}x the previous version's ${baselineP99.toFixed(2)} ms` };
    }
    return { pass: true, reason: `trial passed: ${total} requests, ${failed} failed, p99 engine latency ${p99.toFixed(2)} ms` };
  }
  if (now - startedAt >= policy.windowSeconds * 1000) {
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
