import type { ReferenceProfile } from '../bundle/index.js';
import { Binner, type PredictionLike } from './binner.js';
import { AlertTracker, type DriftAlert, type DriftEvent } from './alerts.js';
import { channelLimits, scoreWindow, type WindowScores } from './evaluate.js';
import { buildLayout, type DriftLayout } from './layout.js';
import { driftOptions, type DriftOptions } from './options.js';
import type { DriftStore, StoredState } from './store.js';
import { WindowAccumulator, type CloseReason } from './window.js';

export type { PredictionLike };

/** A closed window, scored, with what it did to the alert state; `id` is set once stored. */
export interface WindowRecord {
  model: string;
  version: string;
  layout: DriftLayout;
  window: WindowAccumulator;
  scores: WindowScores;
  raised?: DriftAlert;
  cleared?: DriftAlert;
  id?: number;
}

/** Everything one monitor has to write in a flush: windows, alerts closed without a window, and its alert state after them. */
export interface PendingWrite {
  monitor: DriftMonitor;
  records: WindowRecord[];
  clears: DriftAlert[];
  state: StoredState;
}

export interface DriftMonitorInit {
  model: string;
  version: string;
  /** A validated profile (parseReference). */
  profile: ReferenceProfile;
  options?: DriftOptions;
  /**
   * What observe() receives: 'raw' rows as devices send them (default), or rows already
   * standardised with `standardize` exactly as ServedModel.predict does it (in place, float32),
   * so the daemon can pass the feed after predict() without copying it.
   */
  inputs?: 'raw' | 'standardized';
  standardize?: { mean: readonly number[]; std: readonly number[] };
  store?: DriftStore;
  now?: () => number;
}

/** The live state of one monitored model, for the device status. */
export interface MonitorStatus {
  model: string;
  version: string;
  profile: string;
  inputs: 'raw' | 'standardized';
  openWindow: { rows: number; startedAt: string | null };
  pendingWindows: number;
  windowsClosed: number;
  consecutiveDrifting: number;
  consecutiveClean: number;
  last: { at: string; rows: number; judged: boolean; drift: boolean; drifting: string[]; datasetShare: number } | null;
  alert: { id: number | null; raisedAt: string; message: string; features: string[] } | null;
}

/**
 * Drift monitor of one served model version. `observe()` runs on the serving hot path after
 * each batch: per row and channel a table lookup, a comparison or two and four adds on
 * preallocated typed arrays (Binner); no allocation, no I/O, no clock read (once per window).
 * Windows close by row count there, and by age in `collect()`/`flush()`, which the daemon calls
 * on a timer: closed windows are scored, the alert state advances, and everything is written
 * in one transaction; alert callbacks fire after it commits.
 */
export class DriftMonitor {
  readonly model: string;
  readonly version: string;
  readonly layout: DriftLayout;
  readonly options: DriftOptions;
  readonly inputs: 'raw' | 'standardized';
  private readonly store?: DriftStore;
  private readonly now: () => number;
  private readonly tracker: AlertTracker;
  private readonly limits: ReturnType<typeof channelLimits>;
  private readonly binner: Binner;
  private cur: WindowAccumulator;
  private readonly pool: WindowAccumulator[] = [];
  private closed: WindowAccumulator[] = [];
  private unwritten: PendingWrite | undefined;
  private pendingClears: DriftAlert[] = [];
  private closedCount = 0;
  private lastScores?: { at: number; scores: WindowScores };
  private nextWindowId = 1;
  private nextAlertId = 1;
  private rng = 0x9e3779b9;

  constructor(init: DriftMonitorInit) {
    this.model = init.model;
    this.version = init.version;
    this.options = init.options ?? driftOptions();
    this.layout = buildLayout(init.profile);
    this.inputs = init.inputs ?? 'raw';
    this.store = init.store;
    this.now = init.now ?? Date.now;
    this.limits = channelLimits(this.layout, this.options.thresholds);
    const L = this.layout;
    if (this.inputs === 'standardized' && init.standardize?.mean.length !== L.inputs) {
      throw new Error(`drift monitor for ${this.model}: standardized inputs need the bundle's standardize (${L.inputs} values)`);
    }
    this.binner = new Binner(L, this.inputs === 'standardized' ? init.standardize : undefined, this.options.ood.margin);
    this.cur = new WindowAccumulator(L);

    const saved = this.store?.loadState(this.model);
    const a = this.options.alerts;
    if (saved && saved.profile === L.key) {
      this.tracker = new AlertTracker(a, saved);
    } else {
      this.tracker = new AlertTracker(a);
      if (saved?.active) {
        const cleared = new AlertTracker(a, { consecutiveClean: 0, consecutiveDrifting: 0, active: saved.active }).clear(this.now(), `the reference profile changed (${saved.version} -> ${this.version})`);
        if (cleared) this.pendingClears.push(cleared);
      }
    }
  }

  /** Rows in the open window. */
  get openRows(): number {
    return this.cur.rows;
  }

  /** The open alert, if any. */
  get activeAlert(): DriftAlert | undefined {
    return this.tracker.active;
  }

  /**
   * Count `rowCount` rows of `rows` (row-major, `layout.inputs` values each) and their
   * predictions into the open window; closes it (into the flush queue) when it is full.
   */
  observe(rows: Float32Array, rowCount: number, predictions?: ArrayLike<PredictionLike>): void {
    if (rows.length < rowCount * this.layout.inputs) return; // not this profile's input (a caller bug): never read past the feed
    if (this.options.sample < 1) return this.observeSample(rows, rowCount, predictions);
    const limit = this.options.window.rows;
    let r = 0;
    while (r < rowCount) {
      const w = this.cur;
      if (w.rows === 0) w.startedAt = this.now();
      const take = Math.min(rowCount - r, limit - w.rows);
      this.binner.accumulate(w, rows, r, r + take, predictions);
      w.rows += take;
      r += take;
      if (w.rows >= limit) this.close('rows');
    }
  }

  /** observe() keeping each row with probability `sample` (xorshift32: cheap, and no stride to alias with periodic traffic). */
  private observeSample(rows: Float32Array, rowCount: number, predictions?: ArrayLike<PredictionLike>): void {
    const threshold = this.options.sample * 4294967296;
    for (let r = 0; r < rowCount; r++) {
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x;
      if (x >>> 0 >= threshold) continue;
      const w = this.cur;
      if (w.rows === 0) w.startedAt = this.now();
      this.binner.accumulate(w, rows, r, r + 1, predictions);
      if (++w.rows >= this.options.window.rows) this.close('rows');
    }
  }

  /**
   * Out-of-distribution flags: a row is flagged when a value is non-finite or lies more than
   * `ood.margin` reference stds outside the reference [min, max]. Writes 0/1 per row into
   * `out` when given; returns how many rows were flagged. Same units as observe().
   */
  outOfDistribution(rows: Float32Array, rowCount: number, out?: Uint8Array): number {
    return this.binner.outOfDistribution(rows, rowCount, out);
  }

  /** Close the open window (if it has rows) into the flush queue. */
  close(reason: CloseReason): void {
    const w = this.cur;
    if (w.rows === 0) return;
    w.endedAt = this.now();
    w.closeReason = reason;
    this.binner.toRaw(w);
    this.closed.push(w);
    this.closedCount++;
    const next = this.pool.pop() ?? new WindowAccumulator(this.layout);
    next.reset();
    this.cur = next;
  }

  /** Close the open window if it is old enough: `window.ms` with minRows rows, or `window.maxMs` regardless. */
  tick(now = this.now()): void {
    const w = this.cur;
    if (w.rows === 0) return;
    const age = now - w.startedAt;
    const o = this.options.window;
    if (age >= o.ms && w.rows >= o.minRows) this.close('time');
    else if (age >= o.maxMs) this.close('idle');
  }

  /** Score the closed windows and advance the alert state (no I/O). The result must be written, then passed to committed(). */
  collect(now = this.now()): PendingWrite | undefined {
    this.tick(now);
    const prev = this.unwritten;
    if (this.closed.length === 0 && this.pendingClears.length === 0 && !prev) return undefined;
    const o = this.options;
    const records: WindowRecord[] = prev ? [...prev.records] : [];
    for (const w of this.closed) {
      const scores = scoreWindow(w, o.thresholds, o.window.minRows, this.limits);
      const { raised, cleared } = this.tracker.update(scores, { model: this.model, version: this.version, at: w.endedAt });
      records.push({ model: this.model, version: this.version, layout: this.layout, window: w, scores, raised, cleared });
      this.lastScores = { at: w.endedAt, scores };
    }
    this.closed = [];
    const clears = [...(prev?.clears ?? []), ...this.pendingClears];
    this.pendingClears = [];
    const t = this.tracker;
    const state: StoredState = { model: this.model, version: this.version, profile: this.layout.key, consecutiveDrifting: t.consecutiveDrifting, consecutiveClean: t.consecutiveClean, active: t.active };
    this.unwritten = { monitor: this, records, clears, state };
    return this.unwritten;
  }

  /** After the write of `p` committed: recycle its windows and return the events to publish. */
  committed(p: PendingWrite): DriftEvent[] {
    if (this.unwritten === p) this.unwritten = undefined;
    const events: DriftEvent[] = [];
    for (const a of p.clears) events.push(eventOf('drift-clear', a, null, a.clearedAt ?? this.now()));
    for (const rec of p.records) {
      if (rec.raised) events.push(eventOf('drift-alert', rec.raised, rec.id ?? null, rec.raised.raisedAt));
      if (rec.cleared) events.push(eventOf('drift-clear', rec.cleared, rec.id ?? null, rec.cleared.clearedAt!));
      if (this.pool.length < 4) this.pool.push(rec.window);
    }
    return events;
  }

  /**
   * Write what is pending with this monitor's own store (one transaction) and return the
   * events to publish. The daemon flushes all monitors together with DriftService.flush().
   */
  flush(now = this.now()): DriftEvent[] {
    const p = this.collect(now);
    if (!p) return [];
    if (this.store) this.store.write([p]);
    else this.assignLocalIds(p);
    return this.committed(p);
  }

  /** Without a store, ids come from a counter (tests, benchmarks). */
  assignLocalIds(p: PendingWrite): void {
    for (const rec of p.records) {
      rec.id ??= this.nextWindowId++;
      if (rec.raised) rec.raised.id ??= this.nextAlertId++;
    }
  }

  status(): MonitorStatus {
    const t = this.tracker;
    const iso = (ms: number) => new Date(ms).toISOString();
    const last = this.lastScores;
    return {
      model: this.model,
      version: this.version,
      profile: this.layout.key,
      inputs: this.inputs,
      openWindow: { rows: this.cur.rows, startedAt: this.cur.rows ? iso(this.cur.startedAt) : null },
      pendingWindows: this.closed.length + (this.unwritten?.records.length ?? 0),
      windowsClosed: this.closedCount,
      consecutiveDrifting: t.consecutiveDrifting,
      consecutiveClean: t.consecutiveClean,
      last: last ? { at: iso(last.at), rows: last.scores.rows, judged: last.scores.judged, drift: last.scores.drift, drifting: last.scores.drifting.slice(0, 5), datasetShare: last.scores.dataset.share } : null,
      alert: t.active ? { id: t.active.id ?? null, raisedAt: iso(t.active.raisedAt), message: t.active.message, features: t.active.topFeatures.map((f) => f.name) } : null,
    };
  }
}

/** Numbers to 4 significant digits: events are for people and dashboards, not for recomputation. */
function rounded<T>(v: T): T {
  if (typeof v === 'number') return (Number.isFinite(v) && v !== 0 ? Number(v.toPrecision(4)) : v) as T;
  if (Array.isArray(v)) return v.map(rounded) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rounded(x)])) as T;
  return v;
}

function eventOf(type: DriftEvent['type'], a: DriftAlert, windowId: number | null, at: number): DriftEvent {
  const message = type === 'drift-alert' ? a.message : `drift cleared: ${a.clearReason ?? 'clean windows'}`;
  return { type, model: a.model, version: a.version, alertId: a.id ?? -1, at: new Date(at).toISOString(), windowId, message, topFeatures: rounded(a.topFeatures), dataset: rounded(a.dataset), predictions: rounded(a.predictions), windows: a.windows };
}
