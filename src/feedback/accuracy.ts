import type { Manifest } from '../bundle/index.js';
import { classificationMetrics, regressionMetrics } from '../training/metrics/index.js';
import type { FeedbackStore, StoredAccuracyAlert, WindowAggregate } from './store.js';
import type { NewLabelledRow } from './types.js';

/** One time window of live accuracy (classification) or error (regression). */
export interface AccuracyWindow {
  /** Window start (ms since epoch). */
  start: number;
  rows: number;
  accuracy?: number;
  mae?: number;
  rmse?: number;
}

/** How a version is doing on labelled rows, computed from the store. */
export interface LiveAccuracy {
  model: string;
  version: string;
  task: 'classification' | 'regression';
  /** Rows the figures are over (the newest labelled rows with a prediction, at most feedback.liveRows). */
  rows: number;
  accuracy?: number;
  macroF1?: number;
  /** Recall per class name, for classes with true rows among them. */
  perClassRecall?: Record<string, number>;
  mae?: number;
  rmse?: number;
  /** The version's own test accuracy (bundle metrics), what alerts compare with. */
  testAccuracy: number | null;
  windows: AccuracyWindow[];
  alert: StoredAccuracyAlert | null;
}

/** The bundle's test accuracy: metrics.testAccuracy, else metrics.test.accuracy. */
export function testAccuracyOf(manifest: Manifest): number | null {
  const m = manifest.metrics as { testAccuracy?: unknown; test?: { accuracy?: unknown } } | undefined;
  const v = typeof m?.testAccuracy === 'number' ? m.testAccuracy : m?.test?.accuracy;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * The per-window aggregates of a model version, kept between flushes: closed windows do not
 * change (rows are stored with the time they arrived) and the open one is counted on from the
 * rows each flush stores (add()). Re-aggregating every row of the last 48 windows after every
 * flush held the serving thread for milliseconds each second. Read from the store again when
 * the open window moves on, the version changes, or a row falls outside the open window.
 */
export class WindowAggregates {
  private readonly cached = new Map<string, { version: string; windowMs: number; openStart: number; closed: WindowAggregate[]; open?: WindowAggregate }>();

  read(store: FeedbackStore, model: string, version: string, windowMs: number, count: number, now = Date.now()): WindowAggregate[] {
    const openStart = Math.floor(now / windowMs) * windowMs;
    const c = this.cached.get(model);
    if (c && c.version === version && c.windowMs === windowMs && c.openStart === openStart) return c.open ? [...c.closed, { ...c.open }] : [...c.closed];
    // Only the windows shown are read: the index on (model, version, id) plus a time bound keeps it small.
    const all = store.windows(model, version, windowMs, { limit: count, sinceAt: openStart - (count - 1) * windowMs });
    const open = all.find((w) => w.start === openStart);
    this.cached.set(model, { version, windowMs, openStart, closed: all.filter((w) => w.start < openStart), open: open ? { ...open } : undefined });
    return all;
  }

  /** Rows just stored for `model`: counted into its open window, as the store's aggregate counts them. */
  add(model: string, rows: readonly Pick<NewLabelledRow, 'version' | 'label' | 'predicted' | 'at'>[]): void {
    const c = this.cached.get(model);
    if (!c) return;
    for (const r of rows) {
      if (r.version !== c.version || r.predicted === null) continue;
      if (Math.floor(Math.round(r.at) / c.windowMs) * c.windowMs !== c.openStart) {
        this.cached.delete(model);
        return;
      }
      const w = (c.open ??= { start: c.openStart, rows: 0, correct: 0, absError: 0, sqError: 0 });
      const e = r.label - r.predicted;
      w.rows++;
      if (e === 0) w.correct++;
      w.absError += Math.abs(e);
      w.sqError += e * e;
    }
  }
}

/** Live accuracy of one version over its newest `liveRows` labelled rows and per `windowSeconds` window (`aggregates` kept by a long-lived caller). */
export function liveAccuracy(
  store: FeedbackStore,
  m: { name: string; version: string; manifest: Manifest },
  opts: { liveRows: number; windowSeconds: number; windows?: number },
  aggregates = new WindowAggregates(),
): LiveAccuracy {
  const task = m.manifest.task === 'regression' ? 'regression' : 'classification';
  const pairs = store.recentPairs(m.name, m.version, opts.liveRows);
  const out: LiveAccuracy = { model: m.name, version: m.version, task, rows: pairs.label.length, testAccuracy: testAccuracyOf(m.manifest), windows: [], alert: null };
  const windowMs = opts.windowSeconds * 1000;
  const count = opts.windows ?? 48;
  const agg = aggregates.read(store, m.name, m.version, windowMs, count);
  out.windows = agg.map((w) =>
    task === 'classification'
      ? { start: w.start, rows: w.rows, accuracy: w.correct / w.rows }
      : { start: w.start, rows: w.rows, mae: w.absError / w.rows, rmse: Math.sqrt(w.sqError / w.rows) },
  );
  if (out.rows === 0) return out;
  if (task === 'classification') {
    const names = m.manifest.labels;
    const name = (i: number) => names?.[i] ?? String(i);
    const metrics = classificationMetrics(Array.from(pairs.label, name), Array.from(pairs.predicted, name), names ?? []);
    out.accuracy = metrics.accuracy;
    out.macroF1 = metrics.macro.f1;
    out.perClassRecall = Object.fromEntries(metrics.perClass.filter((c) => c.support > 0).map((c) => [c.label, c.recall]));
  } else {
    const r = regressionMetrics(pairs.label, pairs.predicted);
    out.mae = r.mae;
    out.rmse = r.rmse;
  }
  return out;
}

/** Settings of accuracy alerts (the config's feedback.alert). */
export interface AccuracyAlertOptions {
  drop: number;
  clearDrop: number;
  minRows: number;
}

export type AccuracyEvent =
  | { type: 'accuracy-alert'; alert: StoredAccuracyAlert; message: string }
  | { type: 'accuracy-clear'; alert: StoredAccuracyAlert; message: string };

/**
 * Raise/clear with hysteresis, like drift: an alert opens when live accuracy (over at least
 * minRows rows) is more than `drop` below the version's test accuracy, and clears once it is
 * back within `clearDrop`, or when another version serves. One open alert per model, stored.
 */
export function judgeAlert(store: FeedbackStore, live: LiveAccuracy, o: AccuracyAlertOptions, now: number): AccuracyEvent | undefined {
  const open = store.alerts({ open: true, model: live.model, limit: 1 })[0];
  if (open && open.version !== live.version) {
    store.clearAlert(open.id, now, `version ${live.version} serves now`);
    return { type: 'accuracy-clear', alert: { ...open, clearedAt: now, clearReason: 'version changed' }, message: `${live.model}: accuracy alert on ${open.version} cleared, ${live.version} serves now` };
  }
  if (live.task !== 'classification' || live.testAccuracy === null || live.accuracy === undefined || live.rows < o.minRows) {
    live.alert = open ?? null;
    return undefined;
  }
  const gap = live.testAccuracy - live.accuracy;
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  if (!open && gap > o.drop) {
    const message = `${live.model}@${live.version}: live accuracy ${pct(live.accuracy)} over ${live.rows} labelled rows is ${pct(gap)} below its test accuracy ${pct(live.testAccuracy)}`;
    const alert = store.raiseAlert({ model: live.model, version: live.version, raisedAt: now, live: live.accuracy, expected: live.testAccuracy, rows: live.rows, message });
    live.alert = alert;
    return { type: 'accuracy-alert', alert, message };
  }
  if (open && gap <= o.clearDrop) {
    const reason = `live accuracy back to ${pct(live.accuracy)} (test ${pct(live.testAccuracy)})`;
    store.clearAlert(open.id, now, reason);
    live.alert = null;
    return { type: 'accuracy-clear', alert: { ...open, clearedAt: now, clearReason: reason }, message: `${live.model}@${live.version}: ${reason}, accuracy alert cleared` };
  }
  live.alert = open ?? null;
  return undefined;
}
