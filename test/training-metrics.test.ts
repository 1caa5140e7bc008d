import { describe, expect, it } from 'vitest';
import { classificationMetrics, formatClassificationReport, formatConfusionMatrix, regressionMetrics } from '../src/training/metrics/index.js';

describe('classificationMetrics (hand-worked)', () => {
  // true: a a a b b c    pred: a a b a a d
  // 'c' is never predicted; 'd' is predicted but never a true label.
  const m = classificationMetrics(['a', 'a', 'a', 'b', 'b', 'c'], ['a', 'a', 'b', 'a', 'a', 'd'], ['a', 'b', 'c', 'd']);
  const byLabel = Object.fromEntries(m.perClass.map((c) => [c.label, c]));

  it('counts the confusion matrix over every class seen in truth or predictions', () => {
    expect(m.labels).toEqual(['a', 'b', 'c', 'd']);
    expect(m.confusion).toEqual([
      [2, 1, 0, 0],
      [2, 0, 0, 0],
      [0, 0, 0, 1],
      [0, 0, 0, 0],
    ]);
    expect(m.accuracy).toBeCloseTo(2 / 6, 12);
  });

  it('scores each class, a never-predicted and a never-true class as 0 (zero_division=0)', () => {
    // a: tp 2, predicted 4, support 3
    expect(byLabel.a.precision).toBeCloseTo(0.5, 12);
    expect(byLabel.a.recall).toBeCloseTo(2 / 3, 12);
    expect(byLabel.a.f1).toBeCloseTo(4 / 7, 12);
    expect(byLabel.a.support).toBe(3);
    expect(byLabel.b).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 2 });
    // never predicted: precision 0/0 -> 0
    expect(byLabel.c).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 1 });
    // absent from the true labels: recall 0/0 -> 0, support 0
    expect(byLabel.d).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0 });
  });

  it('averages: macro over all four classes, weighted by support', () => {
    expect(m.macro.precision).toBeCloseTo(0.5 / 4, 12);
    expect(m.macro.recall).toBeCloseTo(2 / 3 / 4, 12);
    expect(m.macro.f1).toBeCloseTo(4 / 7 / 4, 12);
    expect(m.weighted.precision).toBeCloseTo((0.5 * 3) / 6, 12);
    expect(m.weighted.recall).toBeCloseTo(2 / 6, 12);
    expect(m.weighted.f1).toBeCloseTo(((4 / 7) * 3) / 6, 12);
    expect(m.macro.support).toBe(6);
  });

  it('leaves out known classes that occur nowhere, and orders the rest numerically', () => {
    const p = classificationMetrics(['10', '2', '2', '9'], ['10', '2', '9', '9'], ['x']);
    expect(p.labels).toEqual(['2', '9', '10']);
    expect(p.perClass.map((c) => c.support)).toEqual([2, 1, 1]);
    expect(p.macro.recall).toBeCloseTo((0.5 + 1 + 1) / 3, 12);
  });

  it('prints the familiar report layout and the confusion matrix', () => {
    const text = formatClassificationReport(m);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^\s+precision\s+recall\s+f1-score\s+support$/);
    expect(lines).toContain('           a      0.500     0.667     0.571         3');
    expect(lines).toContain('           d      0.000     0.000     0.000         0');
    expect(lines).toContain('    accuracy                          0.333         6');
    expect(lines.find((l) => l.trim().startsWith('macro avg'))).toMatch(/0\.125\s+0\.167\s+0\.143\s+6$/);
    expect(lines.find((l) => l.trim().startsWith('weighted avg'))).toMatch(/0\.250\s+0\.333\s+0\.286\s+6$/);
    expect(formatConfusionMatrix(m).split('\n')[1]).toBe('          a 2 1 0 0');
  });
});

describe('regressionMetrics (hand-worked)', () => {
  it('computes MSE, RMSE, MAE and R²', () => {
    // errors 0 0 0 -1; mean 2.5, SS_tot = 5, SS_res = 1
    const m = regressionMetrics([1, 2, 3, 4], [1, 2, 3, 5]);
    expect(m).toEqual({ rows: 4, mse: 0.25, rmse: 0.5, mae: 0.25, r2: 0.8 });
  });

  it('gives R² 1 / 0 on a constant target (perfect / not), never NaN', () => {
    expect(regressionMetrics([2, 2], [2, 2]).r2).toBe(1);
    expect(regressionMetrics([2, 2], [2, 3]).r2).toBe(0);
  });

  it('can be negative when worse than predicting the mean', () => {
    expect(regressionMetrics([0, 2], [2, 0]).r2).toBe(-3);
  });
});
