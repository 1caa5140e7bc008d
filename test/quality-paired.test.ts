import { describe, expect, it } from 'vitest';
import { judgeTrialWithLabels } from '../src/daemon/trial-monitor.js';
import { decideGate, mcnemarOneSided, PairedTally, type GatePolicy, type LabelledSet, type ScoreResult } from '../src/quality/index.js';

// Exact values: sum_{k>=b} C(b+c, k) / 2^(b+c), as scipy.stats.binomtest(b, b+c, 0.5, alternative='greater') gives.
const KNOWN: [number, number, number][] = [
  [5, 0, 1 / 32],
  [10, 2, 79 / 4096],
  [1, 1, 3 / 4],
  [3, 3, 42 / 64],
  [2, 10, 0.996826171875],
  [60, 40, 0.028443966820490395],
  [30, 5, 1.1180760338902473e-5],
  [300, 200, 4.470033271126634e-6],
];

describe('exact one-sided McNemar', () => {
  it.each(KNOWN)('b=%i c=%i gives p=%f', (b, c, p) => {
    expect(mcnemarOneSided(b, c)).toBeCloseTo(p, 12);
    expect(Math.abs(mcnemarOneSided(b, c) - p) / p).toBeLessThan(1e-9);
  });

  it('is 1 without discordant pairs or when the new version is never the worse one', () => {
    expect(mcnemarOneSided(0, 0)).toBe(1);
    expect(mcnemarOneSided(0, 25)).toBe(1);
  });

  it('stays finite and monotone for large counts', () => {
    const p1 = mcnemarOneSided(5200, 4800);
    const p2 = mcnemarOneSided(5300, 4700);
    expect(p1).toBeGreaterThan(0);
    expect(p2).toBeLessThan(p1);
    expect(mcnemarOneSided(20000, 0)).toBe(0); // 2^-20000 underflows to 0, which is the right side of any alpha
  });

  it('refuses counts that are not non-negative integers', () => {
    expect(() => mcnemarOneSided(-1, 2)).toThrow(RangeError);
    expect(() => mcnemarOneSided(1.5, 2)).toThrow(RangeError);
  });
});

const policy: GatePolicy = { enabled: true, minAccuracy: 0.5, maxAccuracyDrop: 0.02, holdoutRows: 500, alpha: 0.05, maxMaeIncrease: 0.1 };

describe('paired tally', () => {
  it('needs both a drop over the margin and significance', () => {
    // One row of 32 flips: 3 points worse, but p = 0.5.
    const oneRow = new PairedTally('classification', '1.0.0');
    for (let i = 0; i < 32; i++) oneRow.addClassified(i !== 0, true);
    expect(oneRow.judge(policy)).toMatchObject({ worse: false, p: 0.5 });
    // 10 worse, 2 better on 2000 rows: significant (p=0.019) but a 0.4-point drop.
    const tiny = new PairedTally('classification', '1.0.0');
    for (let i = 0; i < 2000; i++) tiny.addClassified(i >= 10, i < 10 || i >= 12);
    expect([tiny.b, tiny.c]).toEqual([10, 2]);
    expect(tiny.p).toBeCloseTo(79 / 4096, 12);
    expect(tiny.judge(policy).worse).toBe(false);
    const big = new PairedTally('classification', '1.0.0');
    for (let i = 0; i < 40; i++) big.addClassified(i < 12, i < 38);
    const j = big.judge(policy);
    expect(j.worse).toBe(true);
    expect(j.summary).toMatch(/^12 of 40 paired rows right vs 38 of 40 for 1\.0\.0, McNemar p=/);
  });

  it('regression: sign test on absolute errors and an MAE increase over the share', () => {
    const t = new PairedTally('regression', '1.0.0');
    for (let i = 0; i < 30; i++) t.addRegressed(12, 10); // 20% worse on every row
    expect(t.judge(policy)).toMatchObject({ worse: true });
    const slight = new PairedTally('regression', '1.0.0');
    for (let i = 0; i < 30; i++) slight.addRegressed(10.5, 10); // significant but only 5% worse
    expect(slight.judge(policy).worse).toBe(false);
  });
});

function set(truth: string[]): LabelledSet {
  return { task: 'classification', x: new Float32Array(truth.length), rows: truth.length, features: 1, truth, values: new Float64Array(0), anchorRows: truth.length, holdoutRows: 0 };
}
function score(version: string, correct: number[]): ScoreResult {
  const n = correct.length;
  return { version, rows: n, predicted: new Float64Array(n), predictedLabels: [], correct: Uint8Array.from(correct), absError: new Float64Array(n), accuracy: correct.reduce((a, b) => a + b, 0) / n };
}

describe('gate decision', () => {
  const truth = Array.from({ length: 32 }, (_, i) => String(i % 10));
  it('refuses below minAccuracy, naming the numbers', () => {
    const r = decideGate('digits@1.1.0', set(truth), score('1.1.0', truth.map((_, i) => (i < 4 ? 1 : 0))), score('1.0.0', truth.map(() => 1)), policy);
    expect(r.pass).toBe(false);
    expect(r.reason).toBe('gate refused digits@1.1.0: accuracy 12.5% on 32 labelled rows (32 anchor, 0 holdout) is below registry.gate.minAccuracy 50.0% vs 100.0% for 1.0.0');
    expect(r.paired).toMatchObject({ n: 32, b: 28, c: 0 });
  });

  it('passes a version one row worse on 32 rows (3 points, not significant)', () => {
    const r = decideGate('digits@1.1.0', set(truth), score('1.1.0', truth.map((_, i) => (i === 0 ? 0 : 1))), score('1.0.0', truth.map(() => 1)), policy);
    expect(r.pass).toBe(true);
    expect(r.reason).toMatch(/^gate passed: accuracy 96\.9% vs 100\.0% for 1\.0\.0 on 32 labelled rows/);
  });

  it('refuses a version above minAccuracy that is significantly and clearly worse', () => {
    const r = decideGate('digits@1.1.0', set(truth), score('1.1.0', truth.map((_, i) => (i < 8 ? 0 : 1))), score('1.0.0', truth.map(() => 1)), policy);
    expect(r.pass).toBe(false);
    expect(r.reason).toMatch(/accuracy 75\.0% vs 100\.0% for 1\.0\.0 .*maxAccuracyDrop 2\.0% and significant \(24 of 32 paired rows right vs 32 of 32 for 1\.0\.0, McNemar p=0\.00391/);
  });

  it('with no serving version only minAccuracy applies', () => {
    expect(decideGate('digits@1.0.0', set(truth), score('1.0.0', truth.map((_, i) => (i < 20 ? 1 : 0))), undefined, policy).pass).toBe(true);
  });
});

describe('trial verdict with labels', () => {
  const pass = { pass: true, reason: 'trial passed: 60 requests' } as const;
  const fail = { pass: false, reason: 'trial failed: 5 of 60 requests failed' } as const;
  it('labels that say worse fail the trial whatever the traffic says', () => {
    expect(judgeTrialWithLabels(pass, { paired: 40, worse: true, summary: 's' }, 30, false)).toEqual({ pass: false, reason: 'trial failed on labels: s' });
  });
  it('enough paired rows pass it before the traffic does; traffic failures still fail', () => {
    expect(judgeTrialWithLabels(undefined, { paired: 30, worse: false, summary: 's' }, 30, false)).toEqual({ pass: true, reason: 'trial passed on labels: s' });
    expect(judgeTrialWithLabels(fail, { paired: 30, worse: false, summary: 's' }, 30, false)).toEqual(fail);
  });
  it('some labels but too few: traffic alone does not commit until the window ends', () => {
    expect(judgeTrialWithLabels(pass, { paired: 5, worse: false, summary: 's' }, 30, false)).toBeUndefined();
    expect(judgeTrialWithLabels(pass, { paired: 5, worse: false, summary: 's' }, 30, true)?.pass).toBe(true);
    expect(judgeTrialWithLabels(pass, undefined, 30, false)).toEqual(pass);
  });
});
