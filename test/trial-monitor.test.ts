import { describe, expect, it } from 'vitest';
import { judgeTrial, PairedLatency, type LatencyEvidence, type TrialPolicy } from '../src/daemon/trial-monitor.js';
import { HealthStats } from '../src/engine/index.js';

const policy: TrialPolicy = { minInferences: 10, maxErrorRate: 0.1, maxP99Factor: 2, windowSeconds: 60, onQuietWindow: 'commit' };

function health(ok: number, failed: number, engineMs: number): HealthStats {
  const h = new HealthStats();
  for (let i = 0; i < ok; i++) h.record(true, 1);
  for (let i = 0; i < failed; i++) h.record(false, 1);
  for (let i = 0; i < ok + failed; i++) h.engine.record(engineMs);
  return h;
}

describe('trial verdicts', () => {
  const t0 = 1_000_000;
  /** 40 paired timings of byte-identical versions: ratios around 1. */
  const same: LatencyEvidence = { pairs: 40, medianRatio: 1.01, slower: 3 };
  it('waits while there is too little traffic to judge', () => {
    expect(judgeTrial(health(5, 0, 1), t0, same, policy, t0 + 1000)).toBeUndefined();
  });
  it('passes a healthy version once it has served enough requests', () => {
    expect(judgeTrial(health(10, 0, 1.5), t0, same, policy, t0 + 1000)).toMatchObject({ pass: true, reason: expect.stringContaining('trial passed: 10 requests, 0 failed') });
  });
  it('fails on the error rate as soon as the failures alone decide it', () => {
    expect(judgeTrial(health(3, 2, 1), t0, same, policy, t0 + 1000)).toMatchObject({ pass: false, reason: expect.stringContaining('2 of 5 requests failed') });
  });
  it('fails a version whose engine is over maxP99Factor slower than the previous one on paired timings, beyond noise', () => {
    const slow = new PairedLatency(2);
    for (let i = 0; i < 40; i++) slow.record(5 + (i % 3), 1 + (i % 2) * 0.2);
    expect(judgeTrial(health(20, 0, 5), t0, slow.evidence(), policy, t0 + 1000)).toMatchObject({ pass: false, reason: expect.stringMatching(/engine \d\.\d\dx slower .* 40 paired timings/) });
    // Noise: a third of the pairs hit by a hog at 3x, the median pair equal.
    const noisy = new PairedLatency(2);
    for (let i = 0; i < 40; i++) noisy.record(i % 3 === 0 ? 3 : 1, 1);
    expect(judgeTrial(health(20, 0, 3), t0, noisy.evidence(), policy, t0 + 1000)?.pass).toBe(true);
    // The median pair over the factor, not yet significant (34 pairs, 22 over 2x: p = 0.06): wait for more pairs, up to a bound.
    expect(judgeTrial(health(104, 0, 25), t0, { pairs: 34, medianRatio: 4.41, slower: 22 }, policy, t0 + 1000)).toBeUndefined();
    expect(judgeTrial(health(104, 0, 25), t0, { pairs: 300, medianRatio: 2.2, slower: 160 }, policy, t0 + 1000)?.pass).toBe(true);
    // Too few pairs yet: the traffic alone does not commit, and does not fail either.
    expect(judgeTrial(health(20, 0, 1), t0, { pairs: 5, medianRatio: 9, slower: 5 }, policy, t0 + 1000)).toBeUndefined();
    expect(judgeTrial(health(20, 0, 50), t0, null, policy, t0 + 1000)?.pass).toBe(true); // no previous version: nothing to compare
  });
  it('decides a quiet window by onQuietWindow', () => {
    const quiet = health(3, 0, 1);
    expect(judgeTrial(quiet, t0, same, policy, t0 + 61_000)).toMatchObject({ pass: true, reason: expect.stringContaining('window ended with 3 of 10') });
    expect(judgeTrial(quiet, t0, same, { ...policy, onQuietWindow: 'rollback' }, t0 + 61_000)?.pass).toBe(false);
  });
});
