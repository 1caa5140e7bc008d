import type { DriftLayout } from './layout.js';
import type { WindowAccumulator } from './window.js';

/** What a prediction looks like to the monitor: the served Prediction objects fit as they are. */
export interface PredictionLike {
  index?: number;
  confidence?: number;
  value?: number;
  [key: string]: unknown;
}

/** Lookup cells per channel for binning. */
const GRID = 64;

/**
 * The hot loop: puts rows into a window's histograms. Everything it reads is in flat typed
 * arrays built once per model version, in the units observe() receives (raw, or standardised
 * as ServedModel does it); per value it costs a NaN check, a table lookup and one or two
 * comparisons (no data-dependent binary search), and four adds.
 */
export class Binner {
  private readonly edges: Float64Array;
  private readonly edgeStart: Int32Array;
  private readonly edgeCount: Int32Array;
  private readonly slotStart: Int32Array;
  /** Per channel GRID cells over [first edge, last edge]: the bin holding each cell's start. */
  private readonly grid: Uint16Array;
  private readonly cellScale: Float64Array;
  /** Projection weights, [block of 4 components][input][component in block], and biases. */
  private readonly weights?: Float64Array;
  private readonly bias?: Float64Array;
  /** Scratch: one row's components (float32 like the inputs, so the hot loop sees one array type). */
  private readonly pcs: Float32Array;
  private readonly d: number;
  private readonly k: number;
  /** Standardised inputs: raw = observed * sigma + mu; inv is the float32 1/std ServedModel multiplies by. */
  private readonly sigma?: Float64Array;
  private readonly mu?: Float64Array;
  private readonly inv?: Float64Array;
  private readonly oodLow: Float64Array;
  private readonly oodHigh: Float64Array;

  constructor(
    readonly layout: DriftLayout,
    standardize?: { mean: readonly number[]; std: readonly number[] },
    oodMargin = 1,
  ) {
    const L = layout;
    const d = (this.d = L.inputs);
    const k = (this.k = L.projection?.k ?? 0);
    this.pcs = new Float32Array(k);
    if (standardize) {
      if (standardize.mean.length !== d) throw new Error(`standardized inputs need ${d} means and stds, got ${standardize.mean.length}`);
      // The same float32 arithmetic as ServedModel.predict, so edges and values round alike.
      const mean32 = Float32Array.from(standardize.mean);
      const inv32 = Float32Array.from(standardize.std, (s) => (s > 0 ? 1 / s : 1));
      this.mu = Float64Array.from(mean32);
      this.inv = Float64Array.from(inv32);
      this.sigma = Float64Array.from(inv32, (v) => 1 / v);
    }
    const observed = (j: number, v: number): number => (this.inv ? Math.fround((Math.fround(v) - this.mu![j]) * this.inv[j]) : v);
    const n = L.channels.length;
    this.edges = new Float64Array(L.channels.reduce((a, c) => a + c.edges.length, 0));
    this.edgeStart = new Int32Array(n);
    this.edgeCount = new Int32Array(n);
    this.slotStart = new Int32Array(n);
    this.grid = new Uint16Array(n * GRID);
    this.cellScale = new Float64Array(n);
    let at = 0;
    L.channels.forEach((ch, i) => {
      const s = (this.edgeStart[i] = at);
      const m = (this.edgeCount[i] = ch.edges.length);
      this.slotStart[i] = ch.slot;
      for (const e of ch.edges) this.edges[at++] = ch.kind === 'input' ? observed(i, e) : e;
      const lo = this.edges[s];
      const span = this.edges[s + m - 1] - lo;
      this.cellScale[i] = span > 0 ? GRID / span : 0;
      for (let c = 0; c < GRID; c++) {
        const start = lo + (c * span) / GRID;
        let b = 0;
        while (b + 1 < m - 1 && this.edges[s + b + 1] <= start) b++;
        this.grid[i * GRID + c] = b;
      }
    });
    if (L.projection) {
      this.bias = Float64Array.from(L.projection.bias);
      this.weights = new Float64Array(Math.ceil(k / 4) * 4 * d);
      for (let c = 0; c < k; c++) {
        for (let j = 0; j < d; j++) {
          let w = L.projection.weights[c * d + j];
          if (this.sigma) {
            // x_raw = s * sigma + mu: fold the un-standardisation into the projection.
            this.bias[c] += w * this.mu![j];
            w *= this.sigma[j];
          }
          this.weights[(c - (c % 4)) * d + j * 4 + (c % 4)] = w;
        }
      }
    }
    const inputs = L.channels.slice(0, d);
    const toObs = (j: number, v: number) => (this.inv ? (v - this.mu![j]) * this.inv[j] : v);
    this.oodLow = Float64Array.from(inputs, (c, j) => toObs(j, c.min - oodMargin * c.std));
    this.oodHigh = Float64Array.from(inputs, (c, j) => toObs(j, c.max + oodMargin * c.std));
  }

  /** Rows [from, to) of `x` (layout.inputs values each) and their predictions into window `w`. */
  accumulate(w: WindowAccumulator, x: Float32Array, from: number, to: number, predictions?: ArrayLike<PredictionLike>): void {
    const d = this.d;
    const k = this.k;
    const pcs = this.pcs;
    for (let r = from; r < to; r++) {
      const base = r * d;
      this.putRange(w, x, base, 0, d);
      if (k === 0) continue;
      this.projectRow(x, base);
      this.putRange(w, pcs, -d, d, d + k);
    }
    if (!predictions) return;
    const out = this.layout.output;
    const classes = w.classes;
    for (let r = from; r < to; r++) {
      const p = predictions[r];
      if (p === undefined) continue;
      const i = p.index;
      if (i !== undefined && i >= 0 && i < classes.length) classes[i]++;
      if (out >= 0) {
        const v = p.confidence ?? p.value;
        if (v !== undefined) this.putValue(w, out, v);
      }
    }
  }

  /** One value of channel i at full precision (the output channel: one per row). */
  private putValue(w: WindowAccumulator, i: number, v: number): void {
    if (v - v !== 0) {
      w.nonFinite[i]++;
      return;
    }
    const E = this.edges;
    const s = this.edgeStart[i];
    const last = s + this.edgeCount[i] - 1;
    let e = s;
    if (v < E[s]) w.underSum[i] += v;
    else if (v > E[last]) w.overSum[i] += v;
    while (e <= last && E[e] <= v) e++;
    // e - s edges are <= v: that is the slot, except for the closed top edge itself.
    const slot = v === E[last] ? last - s : e - s;
    w.counts[this.slotStart[i] + slot]++;
    w.sum[i] += v;
    w.sumSq[i] += v * v;
  }

  /**
   * Components of one row, four per pass with an accumulator each: one accumulator per
   * component would chain every add on the previous one's latency.
   */
  private projectRow(x: Float32Array, base: number): void {
    const d = this.d;
    const k = this.k;
    const W = this.weights!;
    const B = this.bias!;
    const pcs = this.pcs;
    for (let c = 0; c < k; c += 4) {
      let a0 = B[c];
      let a1 = c + 1 < k ? B[c + 1] : 0;
      let a2 = c + 2 < k ? B[c + 2] : 0;
      let a3 = c + 3 < k ? B[c + 3] : 0;
      let o = c * d;
      for (let j = 0; j < d; j++, o += 4) {
        const v = x[base + j];
        a0 += W[o] * v;
        a1 += W[o + 1] * v;
        a2 += W[o + 2] * v;
        a3 += W[o + 3] * v;
      }
      pcs[c] = a0;
      if (c + 1 < k) pcs[c + 1] = a1;
      if (c + 2 < k) pcs[c + 2] = a2;
      if (c + 3 < k) pcs[c + 3] = a3;
    }
  }

  /** Channels [from, to) take the values src[offset + i]: slot, moments, tails. */
  private putRange(w: WindowAccumulator, src: Float32Array, offset: number, from: number, to: number): void {
    const E = this.edges;
    const start = this.edgeStart;
    const count = this.edgeCount;
    const slots = this.slotStart;
    const grid = this.grid;
    const cellScale = this.cellScale;
    const counts = w.counts;
    const sum = w.sum;
    const sumSq = w.sumSq;
    for (let i = from; i < to; i++) {
      const v = src[offset + i];
      if (v - v !== 0) {
        w.nonFinite[i]++;
        continue;
      }
      const s = start[i];
      const last = s + count[i] - 1;
      let slot: number;
      if (v < E[s]) {
        slot = 0;
        w.underSum[i] += v;
      } else if (v >= E[last]) {
        if (v > E[last]) {
          slot = last - s + 1;
          w.overSum[i] += v;
        } else slot = last - s;
      } else {
        // The grid gives the bin at the cell's start; an edge inside the cell moves it up.
        let cell = ((v - E[s]) * cellScale[i]) | 0;
        if (cell >= GRID) cell = GRID - 1;
        let e = s + grid[i * GRID + cell];
        e += +(E[e + 1] <= v);
        while (E[e + 1] <= v) e++;
        while (E[e] > v) e--;
        slot = e - s + 1;
      }
      counts[slots[i] + slot]++;
      sum[i] += v;
      sumSq[i] += v * v;
    }
  }

  /** Input sums of a closed window back to raw units (standardised inputs): x = s * sigma + mu. */
  toRaw(w: WindowAccumulator): void {
    if (!this.sigma) return;
    for (let j = 0; j < this.d; j++) {
      const sg = this.sigma[j];
      const mu = this.mu![j];
      const slots = w.slots(j);
      const n = w.finite(j);
      w.sumSq[j] = sg * sg * w.sumSq[j] + 2 * sg * mu * w.sum[j] + n * mu * mu;
      w.sum[j] = sg * w.sum[j] + n * mu;
      w.underSum[j] = sg * w.underSum[j] + slots[0] * mu;
      w.overSum[j] = sg * w.overSum[j] + slots[slots.length - 1] * mu;
    }
  }

  /** See DriftMonitor.outOfDistribution. */
  outOfDistribution(rows: Float32Array, rowCount: number, out?: Uint8Array): number {
    const d = this.d;
    const lo = this.oodLow;
    const hi = this.oodHigh;
    let flagged = 0;
    for (let r = 0; r < rowCount; r++) {
      let bad = 0;
      const base = r * d;
      for (let j = 0; j < d; j++) {
        const v = rows[base + j];
        if (!(v >= lo[j] && v <= hi[j])) {
          bad = 1;
          break;
        }
      }
      if (out) out[r] = bad;
      flagged += bad;
    }
    return flagged;
  }
}
