import { describe, expect, it } from 'vitest';
import { parseReference, type ReferenceProfile } from '../src/bundle/index.js';
import {
  WindowAccumulator,
  buildLayout,
  chiSquareHomogeneity,
  driftOptions,
  gammaQ,
  jensenShannon,
  kolmogorovQ,
  ksPValue,
  ksStatistic,
  lnGamma,
  pca,
  psi,
  scoreWindow,
  slotOf,
  wasserstein1,
} from '../src/drift/index.js';
import { assignBin, buildReferenceProfile } from '../src/training/reference/index.js';

// Expected values below were worked out by hand (and checked with a calculator), not by this code.
describe('drift statistics on small cases', () => {
  it('PSI: sum (q - p) ln(q / p)', () => {
    // p = (.5, .5), q = (.25, .75): (-.25)(ln .5) + (.25)(ln 1.5) = 0.173287 + 0.101366
    expect(psi([50, 50], [25, 75])).toBeCloseTo(0.274653, 6);
    expect(psi([10, 20, 30], [1, 2, 3])).toBeCloseTo(0, 12);
    // an empty reference bin counts as 1e-4: (.5 - 1) ln(.5) + (.5 - 1e-4) ln(.5 / 1e-4)
    expect(psi([100, 0], [50, 50])).toBeCloseTo(4.604318, 5);
    // a bin empty on both sides adds nothing
    expect(psi([100, 0, 0], [50, 50, 0])).toBeCloseTo(4.604318, 5);
  });

  it('Jensen-Shannon distance, base 2', () => {
    // m = (.375, .625); JSD = (0.046554 + 0.051035) / 2 = 0.048795; sqrt = 0.220896
    expect(jensenShannon([50, 50], [25, 75])).toBeCloseTo(0.220896, 5);
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(1, 12);
    expect(jensenShannon([3, 7], [30, 70])).toBeCloseTo(0, 7);
  });

  it('KS statistic from binned CDFs, and its asymptotic p-value', () => {
    // F_ref = .25 .5 .75 1, F_cur = 0 0 .5 1
    expect(ksStatistic([1, 1, 1, 1], [0, 0, 2, 2])).toBeCloseTo(0.5, 12);
    // Kolmogorov survival function: classic table values
    expect(kolmogorovQ(0.5)).toBeCloseTo(0.963945, 5);
    expect(kolmogorovQ(1.0)).toBeCloseTo(0.27, 5);
    expect(kolmogorovQ(1.36)).toBeCloseTo(0.049486, 5); // the 5% critical value
    expect(kolmogorovQ(1.63)).toBeCloseTo(0.009846, 5);
    expect(kolmogorovQ(0)).toBe(1);
    // both forms agree where they switch
    expect(kolmogorovQ(1.1799999)).toBeCloseTo(kolmogorovQ(1.18), 6);
    // D = .5, n = m = 100: ne = 50, lambda = .5 * sqrt(50) = 3.5355, Q = 2 e^-25 = 2.7776e-11
    expect(ksPValue(0.5, 100, 100) / 2.7775888e-11).toBeCloseTo(1, 5);
    // effective n = n m / (n + m): 1000 vs 25 -> 24.39
    expect(ksPValue(0.2, 1000, 25)).toBeCloseTo(kolmogorovQ(0.2 * Math.sqrt((1000 * 25) / 1025)), 12);
  });

  it('Wasserstein-1 between weighted point sets', () => {
    expect(wasserstein1([0, 1], [1, 0], [0, 1], [0, 1])).toBeCloseTo(1, 12);
    // {0: .5, 2: .5} vs {1: 1}: |.5 - 0| over [0, 1] + |.5 - 1| over [1, 2]
    expect(wasserstein1([0, 2], [1, 1], [1], [1])).toBeCloseTo(1, 12);
    // same support, CDFs differ by .25 over [0, 1]
    expect(wasserstein1([0, 1], [2, 2], [0, 1], [1, 3])).toBeCloseTo(0.25, 12);
    // a shift of every point by 3
    expect(wasserstein1([1, 2, 5], [1, 1, 2], [4, 5, 8], [1, 1, 2])).toBeCloseTo(3, 12);
  });

  it('chi-square homogeneity test for the predicted-class distribution', () => {
    // 2x2 table 10/20 vs 20/10: expected 15 everywhere, statistic 4 * 25 / 15, df 1, p = erfc(sqrt(x / 2))
    const r = chiSquareHomogeneity([10, 20], [20, 10]);
    expect(r.statistic).toBeCloseTo(6.666667, 5);
    expect(r.df).toBe(1);
    expect(r.pValue).toBeCloseTo(0.0098233, 6);
    // a class absent from both rows is not a degree of freedom
    expect(chiSquareHomogeneity([10, 20, 0], [20, 10, 0]).df).toBe(1);
    // Q(1, x) = e^-x, Q(2, x) = e^-x (1 + x), ln Gamma(5) = ln 24
    expect(gammaQ(1, 2)).toBeCloseTo(Math.exp(-2), 12);
    expect(gammaQ(2, 3)).toBeCloseTo(4 * Math.exp(-3), 12);
    expect(gammaQ(2, 0.5)).toBeCloseTo(1.5 * Math.exp(-0.5), 12);
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
  });

  it('scores a window against a tiny profile: every statistic by hand', () => {
    // Reference: 50 values in [0, 1), 50 in [1, 2]; mean 1, std .5. Window: 100 values of 1.5.
    const profile = parseReference(
      { format: 'edgeloop-reference/1', features: [{ name: 'a', edges: [0, 1, 2], counts: [50, 50], underflow: 0, overflow: 0, mean: 1, std: 0.5, min: 0, max: 2 }] },
      'test',
    );
    const layout = buildLayout(profile);
    const w = new WindowAccumulator(layout);
    w.counts[2] = 100; // slots: under, [0,1), [1,2], over
    w.sum[0] = 150;
    w.sumSq[0] = 225;
    w.rows = 100;
    const s = scoreWindow(w, driftOptions().thresholds, 10);
    const a = s.channels[0];
    expect(a.psi).toBeCloseTo(4.604318, 5); // (1e-4 - .5) ln(1e-4 / .5) + (1 - .5) ln 2
    expect(a.js).toBeCloseTo(0.557923, 5); // JSD = (0.207519 + 0.415037) / 2 = 0.311278
    expect(a.ks).toBeCloseTo(0.5, 12);
    expect(a.pValue / 2.7775888e-11).toBeCloseTo(1, 5); // n = m = 100
    expect(a.wasserstein).toBeCloseTo(1, 12); // half the mass moves from 0.5 to 1.5: W = .5, / std .5
    expect(a.mean).toBe(1.5);
    expect(a.std).toBe(0);
    expect(a.level).toBe('drift');
    expect(s.drifting).toEqual(['a']);
    expect(s.dataset).toEqual({ drifting: 1, total: 1, share: 1, drift: true });
    expect(s.drift).toBe(true);
    // Too few rows to judge: scored, but not a verdict.
    expect(scoreWindow(w, driftOptions().thresholds, 101).drift).toBe(false);
  });

  it('lets only the configured magnitudes make a feature drift; the others make it a warning', () => {
    const profile = parseReference(
      { format: 'edgeloop-reference/1', features: [{ name: 'a', edges: [0, 1, 2], counts: [500, 500], underflow: 0, overflow: 0, mean: 1, std: 0.5, min: 0, max: 2 }] },
      'test',
    );
    const w = new WindowAccumulator(buildLayout(profile));
    w.counts[1] = 350; // q = (.35, .65) vs p = (.5, .5)
    w.counts[2] = 650;
    w.rows = 1000;
    const score = (drivers: ('psi' | 'js' | 'wasserstein')[]) => scoreWindow(w, driftOptions({ thresholds: { drivers } }).thresholds, 10).channels[0];
    const a = score(['psi']);
    expect(a.psi).toBeCloseTo(0.092856, 5); // (-.15) ln .7 + (.15) ln 1.3 = 0.053501 + 0.039355
    expect(a.js).toBeCloseTo(0.129129, 5); // m = (.425, .575): JSD = (0.016416 + 0.016933) / 2
    expect(a.wasserstein).toBeCloseTo(0.3, 12); // .15 of the mass moves by 1; / std .5
    expect(a.ks).toBeCloseTo(0.15, 12);
    expect(a.level).toBe('warning');
    expect(score(['js']).level).toBe('drift');
    expect(score(['wasserstein']).level).toBe('drift');
  });

  it('uses the same bins as the training toolchain', () => {
    const cases = [[0, 1, 2], [0, 0], [-3, -1, 0.5, 0.75, 10], [5, 6]];
    for (const edges of cases) {
      for (const v of [-10, -3, -1, -0.5, 0, 0.5, 0.6, 0.75, 1, 1.5, 2, 5, 5.5, 6, 10, 11]) {
        const b = assignBin(edges, v);
        const expected = b < 0 ? 0 : b + 1; // slots: underflow first
        expect(slotOf(edges, v), `v=${v} edges=${edges}`).toBe(expected);
      }
    }
  });

  it('accepts the reference profiles the training toolchain writes', () => {
    const x = Float32Array.from({ length: 200 }, (_, i) => (i * 37) % 17);
    const p = buildReferenceProfile({
      features: ['a', 'b'],
      train: x,
      trainRows: 100,
      validationOutputs: Float32Array.from({ length: 100 * 3 }, (_, i) => (i % 3 === 0 ? 0.8 : 0.1)),
      validationRows: 100,
      labels: ['x', 'y', 'z'],
      anchor: { rows: [[1, 2]], truth: ['x'], outputs: [[0.8, 0.1, 0.1]] },
    });
    const parsed: ReferenceProfile = parseReference(p, 'toolchain profile');
    expect(parsed.features.map((f) => f.name)).toEqual(['a', 'b']);
    expect(buildLayout(parsed).channels.map((c) => c.kind)).toEqual(['input', 'input', 'output']);
  });

  it('finds principal components by power iteration', () => {
    // Points along (1, 1) with small noise across: the first component is (1, 1)/sqrt 2.
    const rows = 400;
    const x = new Float64Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      const t = (r / rows) * 10 - 5;
      const n = ((r * 7919) % 13) / 13 - 0.5;
      x[r * 2] = t + 0.1 * n;
      x[r * 2 + 1] = t - 0.1 * n;
    }
    const p = pca(x, rows, 2, 2);
    expect(Math.abs(p.components[0][0])).toBeCloseTo(Math.SQRT1_2, 3);
    expect(p.components[0][0] * p.components[0][1]).toBeGreaterThan(0);
    expect(p.explained[0]).toBeGreaterThan(0.99);
    expect(p.variance[0] + p.variance[1]).toBeCloseTo(2, 6); // trace of a 2x2 correlation matrix
  });
});
