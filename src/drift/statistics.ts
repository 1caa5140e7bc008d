/**
 * Two-sample drift statistics on binned distributions. `ref` and `cur` are counts (or
 * proportions) over the same ordered bins; for an input feature the bins are
 * [underflow, bin 0, ..., bin n-1, overflow]. Every function is small enough to check by hand
 * (test/drift-statistics.test.ts does).
 */

/** Proportion a PSI term gives an empty bin, instead of 0 (which would make PSI infinite). */
export const PSI_FLOOR = 1e-4;

/** Counts as proportions; an all-zero vector stays all zero. */
export function proportions(counts: ArrayLike<number>): Float64Array {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  const out = new Float64Array(counts.length);
  if (total > 0) for (let i = 0; i < counts.length; i++) out[i] = counts[i] / total;
  return out;
}

/**
 * Population stability index: sum over bins of (q - p) * ln(q / p), p the reference and q the
 * current proportions. A proportion of exactly 0 counts as `floor` (1e-4), without
 * renormalising the others; a bin empty in both contributes 0.
 */
export function psi(ref: ArrayLike<number>, cur: ArrayLike<number>, floor = PSI_FLOOR): number {
  const p = proportions(ref);
  const q = proportions(cur);
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] > 0 ? p[i] : floor;
    const b = q[i] > 0 ? q[i] : floor;
    s += (b - a) * Math.log(b / a);
  }
  return s;
}

/**
 * Jensen-Shannon distance, base 2: sqrt(JSD) with JSD = KL(p || m) / 2 + KL(q || m) / 2,
 * m = (p + q) / 2, logarithms base 2. 0 for identical distributions, 1 for disjoint ones.
 */
export function jensenShannon(ref: ArrayLike<number>, cur: ArrayLike<number>): number {
  const p = proportions(ref);
  const q = proportions(cur);
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i] + q[i]) / 2;
    if (p[i] > 0) d += 0.5 * p[i] * Math.log2(p[i] / m);
    if (q[i] > 0) d += 0.5 * q[i] * Math.log2(q[i] / m);
  }
  return Math.sqrt(Math.max(0, d));
}

/** Kolmogorov-Smirnov statistic on binned data: the largest |F_ref - F_cur| at a bin boundary. */
export function ksStatistic(ref: ArrayLike<number>, cur: ArrayLike<number>): number {
  const p = proportions(ref);
  const q = proportions(cur);
  let fp = 0;
  let fq = 0;
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    fp += p[i];
    fq += q[i];
    d = Math.max(d, Math.abs(fp - fq));
  }
  return Math.min(1, d);
}

/**
 * Survival function of the Kolmogorov distribution, Q(l) = P(K > l) =
 * 2 * sum_{j>=1} (-1)^(j-1) exp(-2 j^2 l^2). For small l that series converges slowly, so
 * there the equivalent theta-function form P(K <= l) = sqrt(2 pi) / l * sum_{j>=1}
 * exp(-(2j-1)^2 pi^2 / (8 l^2)) is used.
 */
export function kolmogorovQ(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    let s = 0;
    for (let j = 1; j <= 6; j++) s += Math.exp(-((2 * j - 1) ** 2) * Math.PI ** 2 / (8 * lambda * lambda));
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * s));
  }
  let s = 0;
  for (let j = 1; j <= 100; j++) {
    const term = Math.exp(-2 * j * j * lambda * lambda);
    s += j % 2 === 1 ? term : -term;
    if (term < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * s));
}

/**
 * Asymptotic two-sample KS p-value: Q(sqrt(ne) * D) with the effective sample size
 * ne = n * m / (n + m). On binned data D can only be smaller than on the raw values, so the
 * test is conservative (it never reports drift the raw data would not show).
 */
export function ksPValue(d: number, n: number, m: number): number {
  if (n <= 0 || m <= 0) return 1;
  return kolmogorovQ(Math.sqrt((n * m) / (n + m)) * d);
}

/**
 * First Wasserstein distance between two weighted point sets on a line (weights are
 * normalised): the area between their CDFs, integral of |F_a(x) - F_b(x)| dx.
 */
export function wasserstein1(xa: ArrayLike<number>, wa: ArrayLike<number>, xb: ArrayLike<number>, wb: ArrayLike<number>): number {
  const pa = proportions(wa);
  const pb = proportions(wb);
  const pts: { x: number; da: number; db: number }[] = [];
  for (let i = 0; i < xa.length; i++) if (pa[i] > 0) pts.push({ x: xa[i], da: pa[i], db: 0 });
  for (let i = 0; i < xb.length; i++) if (pb[i] > 0) pts.push({ x: xb[i], da: 0, db: pb[i] });
  if (pts.length === 0) return 0;
  pts.sort((u, v) => u.x - v.x);
  let fa = 0;
  let fb = 0;
  let w = 0;
  for (let i = 0; i < pts.length - 1; i++) {
    fa += pts[i].da;
    fb += pts[i].db;
    w += Math.abs(fa - fb) * (pts[i + 1].x - pts[i].x);
  }
  return w;
}

/** ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 significant digits). */
export function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a): series below a + 1, continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnPre = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.min(1, Math.max(0, 1 - sum * Math.exp(lnPre)));
  }
  // Lentz's method for the continued fraction of Gamma(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.max(0, Math.exp(lnPre) * h));
}

/**
 * Pearson chi-square test of homogeneity on a 2 x K table (reference counts vs current
 * counts), for categorical distributions such as predicted classes. Categories empty in both
 * rows are left out; df = (categories used) - 1.
 */
export function chiSquareHomogeneity(ref: ArrayLike<number>, cur: ArrayLike<number>): { statistic: number; df: number; pValue: number } {
  let n1 = 0;
  let n2 = 0;
  for (let i = 0; i < ref.length; i++) {
    n1 += ref[i];
    n2 += cur[i];
  }
  if (n1 === 0 || n2 === 0) return { statistic: 0, df: 0, pValue: 1 };
  const total = n1 + n2;
  let stat = 0;
  let used = 0;
  for (let i = 0; i < ref.length; i++) {
    const col = ref[i] + cur[i];
    if (col === 0) continue;
    used++;
    const e1 = (n1 * col) / total;
    const e2 = (n2 * col) / total;
    stat += (ref[i] - e1) ** 2 / e1 + (cur[i] - e2) ** 2 / e2;
  }
  const df = used - 1;
  return { statistic: stat, df, pValue: df > 0 ? gammaQ(df / 2, stat / 2) : 1 };
}
