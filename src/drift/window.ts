import type { DriftLayout } from './layout.js';

/** Why a window closed. */
export type CloseReason = 'rows' | 'time' | 'idle' | 'shutdown' | 'detach' | 'rollup';

/** A window as stored: plain arrays, in raw units, mergeable by adding. */
export interface WindowHistograms {
  /** Counts per slot, all channels (layout.totalSlots). */
  counts: number[];
  /** Per channel: sum and sum of squares of the finite values, count and sums of under/overflow values. */
  sum: number[];
  sumSq: number[];
  underSum: number[];
  overSum: number[];
  nonFinite: number[];
  /** Predicted-class counts (classifiers). */
  classes: number[];
}

/**
 * The live statistics of one window: flat typed arrays indexed by the layout, updated in
 * place by the monitor's hot loop and reused after the window is written.
 */
export class WindowAccumulator {
  rows = 0;
  startedAt = 0;
  endedAt = 0;
  closeReason: CloseReason = 'rows';
  readonly counts: Float64Array;
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  readonly underSum: Float64Array;
  readonly overSum: Float64Array;
  readonly nonFinite: Float64Array;
  readonly classes: Float64Array;

  constructor(readonly layout: DriftLayout) {
    const c = layout.channels.length;
    this.counts = new Float64Array(layout.totalSlots);
    this.sum = new Float64Array(c);
    this.sumSq = new Float64Array(c);
    this.underSum = new Float64Array(c);
    this.overSum = new Float64Array(c);
    this.nonFinite = new Float64Array(c);
    this.classes = new Float64Array(layout.classes?.ref.length ?? 0);
  }

  reset(): void {
    this.rows = 0;
    this.startedAt = 0;
    this.endedAt = 0;
    this.closeReason = 'rows';
    for (const a of [this.counts, this.sum, this.sumSq, this.underSum, this.overSum, this.nonFinite, this.classes]) a.fill(0);
  }

  /** Counts of channel `i`, one per slot (a view). */
  slots(i: number): Float64Array {
    const ch = this.layout.channels[i];
    return this.counts.subarray(ch.slot, ch.slot + ch.edges.length + 1);
  }

  /** Finite values seen on channel `i`. */
  finite(i: number): number {
    let n = 0;
    for (const c of this.slots(i)) n += c;
    return n;
  }

  /** Add another window of the same layout (roll-ups). */
  add(o: WindowAccumulator | WindowHistograms, rows: number, startedAt: number, endedAt: number): void {
    addInto(this.counts, o.counts);
    addInto(this.sum, o.sum);
    addInto(this.sumSq, o.sumSq);
    addInto(this.underSum, o.underSum);
    addInto(this.overSum, o.overSum);
    addInto(this.nonFinite, o.nonFinite);
    addInto(this.classes, o.classes);
    this.startedAt = this.rows === 0 ? startedAt : Math.min(this.startedAt, startedAt);
    this.endedAt = Math.max(this.endedAt, endedAt);
    this.rows += rows;
  }

  toJSON(): WindowHistograms {
    return {
      counts: Array.from(this.counts),
      sum: Array.from(this.sum),
      sumSq: Array.from(this.sumSq),
      underSum: Array.from(this.underSum),
      overSum: Array.from(this.overSum),
      nonFinite: Array.from(this.nonFinite),
      classes: Array.from(this.classes),
    };
  }

  /** A window read back from storage; arrays of the wrong length (another layout) are refused. */
  static from(layout: DriftLayout, h: WindowHistograms, meta: { rows: number; startedAt: number; endedAt: number; closeReason?: CloseReason }): WindowAccumulator {
    const w = new WindowAccumulator(layout);
    if (h.counts.length !== w.counts.length || h.sum.length !== w.sum.length || (h.classes?.length ?? 0) !== w.classes.length) {
      throw new Error(`window histograms do not match drift layout ${layout.key}`);
    }
    w.add(h, meta.rows, meta.startedAt, meta.endedAt);
    w.closeReason = meta.closeReason ?? 'rows';
    return w;
  }
}

function addInto(a: Float64Array, b: ArrayLike<number> | undefined): void {
  if (!b) return;
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
