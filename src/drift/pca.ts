/**
 * Principal components of a table by subspace (block power) iteration on its correlation
 * matrix: multiply k vectors by the matrix, re-orthonormalise (Gram-Schmidt), repeat until
 * the subspace stops moving. No dependency, and for 64 features it takes milliseconds.
 */
import { prng } from '../training/data/index.js';

export interface Pca {
  /** Per-feature mean and 1/std (0 for a constant feature): z = (x - center) * scale. */
  center: number[];
  scale: number[];
  /** k unit vectors over the standardised features, largest variance first, sign fixed so the largest entry is positive. */
  components: number[][];
  /** Variance of z along each component (eigenvalues), and its share of the total. */
  variance: number[];
  explained: number[];
  iterations: number;
}

/** Deterministic pseudo-random numbers in [-1, 1), from the toolchain's seeded PRNG. */
function rand(seed: number): () => number {
  const next = prng(seed);
  return () => next() * 2 - 1;
}

/** Orthonormalise k vectors of length d in place (Gram-Schmidt, twice for stability). */
function orthonormalise(v: Float64Array[], d: number): void {
  for (let c = 0; c < v.length; c++) {
    for (let attempt = 0; ; attempt++) {
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < c; p++) {
          let dot = 0;
          for (let j = 0; j < d; j++) dot += v[c][j] * v[p][j];
          for (let j = 0; j < d; j++) v[c][j] -= dot * v[p][j];
        }
      }
      let norm = 0;
      for (let j = 0; j < d; j++) norm += v[c][j] * v[c][j];
      norm = Math.sqrt(norm);
      if (norm > 1e-12 || attempt >= d) {
        for (let j = 0; j < d; j++) v[c][j] /= norm || 1;
        break;
      }
      // No variance left in this direction: restart it from a basis vector.
      v[c].fill(0);
      v[c][(c + attempt) % d] = 1;
    }
  }
}

/** The first `k` principal components of `rows` x `d` values (row-major). */
export function pca(x: ArrayLike<number>, rows: number, d: number, k: number, opts: { maxIterations?: number; tolerance?: number; seed?: number } = {}): Pca {
  const center = new Array<number>(d).fill(0);
  const sq = new Array<number>(d).fill(0);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) center[j] += x[r * d + j];
  for (let j = 0; j < d; j++) center[j] /= rows;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) {
      const dv = x[r * d + j] - center[j];
      sq[j] += dv * dv;
    }
  }
  const scale = sq.map((s) => {
    const std = Math.sqrt(s / rows);
    return std > 0 ? 1 / std : 0;
  });
  // Correlation matrix C = Z^T Z / n of the standardised table.
  const C = new Float64Array(d * d);
  const z = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) z[j] = (x[r * d + j] - center[j]) * scale[j];
    for (let i = 0; i < d; i++) {
      const zi = z[i];
      if (zi === 0) continue;
      for (let j = i; j < d; j++) C[i * d + j] += zi * z[j];
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      C[i * d + j] /= rows;
      C[j * d + i] = C[i * d + j];
    }
  }
  let trace = 0;
  for (let i = 0; i < d; i++) trace += C[i * d + i];

  k = Math.min(k, d);
  const next = rand(opts.seed ?? 1);
  let v = Array.from({ length: k }, () => Float64Array.from({ length: d }, next));
  orthonormalise(v, d);
  const maxIterations = opts.maxIterations ?? 500;
  const tolerance = opts.tolerance ?? 1e-10;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const w = v.map((vc) => {
      const out = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += C[i * d + j] * vc[j];
        out[i] = s;
      }
      return out;
    });
    orthonormalise(w, d);
    // Converged when each new vector is (up to sign) the old one.
    let moved = 0;
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += w[c][j] * v[c][j];
      moved = Math.max(moved, 1 - Math.abs(dot));
    }
    v = w;
    if (moved < tolerance) break;
  }
  const variance = v.map((vc) => {
    let s = 0;
    for (let i = 0; i < d; i++) {
      let ci = 0;
      for (let j = 0; j < d; j++) ci += C[i * d + j] * vc[j];
      s += vc[i] * ci;
    }
    return s;
  });
  const order = variance.map((_, i) => i).sort((a, b) => variance[b] - variance[a]);
  const components = order.map((i) => {
    const vc = Array.from(v[i]);
    let big = 0;
    for (let j = 1; j < d; j++) if (Math.abs(vc[j]) > Math.abs(vc[big])) big = j;
    return vc[big] < 0 ? vc.map((a) => -a) : vc;
  });
  const sorted = order.map((i) => variance[i]);
  return { center, scale, components, variance: sorted, explained: sorted.map((s) => (trace > 0 ? s / trace : 0)), iterations: iterations + 1 };
}

/** Component values of each row: pc[r][c] = sum_j components[c][j] * (x[r][j] - center[j]) * scale[j]. */
export function project(p: Pick<Pca, 'center' | 'scale' | 'components'>, x: ArrayLike<number>, rows: number): Float64Array[] {
  const d = p.center.length;
  return p.components.map((comp) => {
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += comp[j] * (x[r * d + j] - p.center[j]) * p.scale[j];
      out[r] = s;
    }
    return out;
  });
}
