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
