import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FeedbackStore, PredictionIds, PredictionRing, isHoldout, type NewLabelledRow } from '../src/feedback/index.js';
import { WindowAggregates } from '../src/feedback/accuracy.js';

const home = () => mkdtempSync(path.join(os.tmpdir(), 'edgeloop-fb-store-'));
const limits = { maxRows: 100, reservoirPerClass: 5, holdoutShare: 0.2 };
const tasks = new Map([['m', 'classification']]);

function row(i: number, label: number, predicted: number | null = label): NewLabelledRow {
  return { model: 'm', version: '1.0.0', inputs: Float32Array.from([i, i + 0.5, -i]), label, predicted, predictionId: null, source: 'cli', at: 1_000_000 + i * 1000 };
}

describe('labelled store', () => {
  let store: FeedbackStore | undefined;
  afterEach(() => store?.close());

  it('round-trips raw float32 inputs, labels and predictions, newest first', () => {
    store = FeedbackStore.open(home());
    const { ids } = store.write([row(1, 3), row(2, 4, null), row(3, 5, 1)], tasks, limits);
    expect(ids).toHaveLength(3);
    const b = store.rows('m');
    expect(b.rows).toBe(3);
    expect(b.features).toBe(3);
    expect(Array.from(b.x.subarray(0, 3))).toEqual([3, 3.5, -3]);
    expect(Array.from(b.y)).toEqual([5, 4, 3]);
    expect(Number.isNaN(b.predicted[1])).toBe(true);
    expect(b.predicted[0]).toBe(1);
    expect(store.rows('m', { order: 'oldest', limit: 1 }).ids).toEqual([ids[0]]);
    expect(store.rows('m', { sinceId: ids[1] }).ids).toEqual([ids[2]]);
    expect(store.latestId('m')).toBe(ids[2]);
    expect(store.latestId('other')).toBe(0);
  });

  it('sets a deterministic holdout share aside, exact to within one row', () => {
    store = FeedbackStore.open(home());
    const rows = Array.from({ length: 100 }, (_, i) => row(i, i % 3));
    const { holdout } = store.write(rows, tasks, { ...limits, maxRows: 1000 });
    const n = holdout.filter(Boolean).length;
    expect(Math.abs(n - 20)).toBeLessThanOrEqual(1);
    expect(holdout).toEqual(Array.from({ length: 100 }, (_, i) => isHoldout(i + 1, 0.2)));
    expect(store.rows('m', { holdout: true }).rows).toBe(n);
    expect(store.rows('m', { holdout: false }).rows).toBe(100 - n);
  });

  it('keeps the newest maxRows rows and a class-balanced reservoir of trainable older ones', () => {
    store = FeedbackStore.open(home());
    // 3 classes; 400 rows in 4 flushes against maxRows 100 and 5 per class in the reservoir.
    for (let f = 0; f < 4; f++) store.write(Array.from({ length: 100 }, (_, i) => row(f * 100 + i, (f * 100 + i) % 3)), tasks, limits);
    const [c] = store.counts();
    expect(c.rows).toBe(100 + 15);
    expect(c.reservoir).toBe(15);
    expect(c.inserted).toBe(400);
    const res = store.reservoir('m', 100);
    expect(res.rows).toBe(15);
    const perClass = [0, 1, 2].map((k) => Array.from(res.y).filter((y) => y === k).length);
    expect(perClass).toEqual([5, 5, 5]);
    // Reservoir rows are older than every kept row and never holdout.
    const newest = store.rows('m', { limit: 100 });
    expect(Math.max(...res.ids)).toBeLessThan(Math.min(...newest.ids));
    expect(store.rows('m', { holdout: true }).ids.some((id) => res.ids.includes(id))).toBe(false);
    // A short limit stays balanced.
    expect(new Set(Array.from(store.reservoir('m', 3).y))).toEqual(new Set([0, 1, 2]));
  });

  it('prunes from its kept counts: regression as one reservoir bucket, a lowered reservoir share, a database from before the counts', () => {
    const dir = home();
    store = FeedbackStore.open(dir);
    const reg = new Map([['r', 'regression']]);
    const regRow = (i: number): NewLabelledRow => ({ ...row(i, i * 0.5), model: 'r' });
    for (let f = 0; f < 3; f++) store.write(Array.from({ length: 100 }, (_, i) => regRow(f * 100 + i)), reg, limits);
    const [r] = store.counts();
    expect([r.rows, r.reservoir, r.inserted]).toEqual([105, 5, 300]);
    // The reservoir holds the newest evicted trainable rows.
    const kept = store.reservoir('r', 100);
    const evictedTrainable = Array.from({ length: 200 }, (_, i) => i + 1).filter((n) => !isHoldout(n, limits.holdoutShare));
    expect(Array.from(kept.y).sort((a, b) => a - b)).toEqual(evictedTrainable.slice(-5).map((n) => (n - 1) * 0.5));

    // Classification at its limit, then a smaller reservoir share: every class is cut to it at the next prune.
    for (let f = 0; f < 3; f++) store.write(Array.from({ length: 100 }, (_, i) => row(f * 100 + i, (f * 100 + i) % 3)), tasks, limits);
    store.write([row(300, 0)], tasks, { ...limits, reservoirPerClass: 2 });
    const res = store.reservoir('m', 100);
    expect([0, 1, 2].map((k) => Array.from(res.y).filter((y) => y === k).length)).toEqual([2, 2, 2]);
    expect(store.counts().find((c) => c.model === 'm')!.rows).toBe(100 + 6);

    // A database written before the live counts (schema 1): the migration counts the rows, and pruning goes on from there.
    store.db.exec(`DROP INDEX feedback_rows_reservoir; DROP INDEX feedback_rows_holdout; ALTER TABLE feedback_models DROP COLUMN live; DELETE FROM schema_migrations WHERE component = 'feedback' AND version >= 2`);
    store.close();
    store = FeedbackStore.open(dir);
    expect(store.db.prepare("SELECT live FROM feedback_models WHERE model = 'm'").pluck().get()).toBe(100);
    store.write(Array.from({ length: 50 }, (_, i) => row(400 + i, i % 3)), tasks, limits);
    const m = store.counts().find((c) => c.model === 'm')!;
    expect([m.rows, m.reservoir]).toEqual([100 + 15, 15]);
    expect(store.rows('m', { limit: 1 }).ids[0]).toBe(store.latestId('m'));
    // counts() reads kept counts and indexes: the same as aggregating every row.
    const aggregated = store.db
      .prepare(
        `SELECT m.model, m.task, m.inserted, COUNT(r.id) AS rows, COALESCE(SUM(r.holdout), 0) AS holdout, COALESCE(SUM(r.reservoir), 0) AS reservoir,
           MIN(r.at) AS firstAt, MAX(r.at) AS lastAt
         FROM feedback_models m LEFT JOIN feedback_rows r ON r.model = m.model GROUP BY m.model ORDER BY m.model`,
      )
      .all();
    expect(store.counts()).toEqual(aggregated);
    expect(store.counts().map((c) => c.model)).toEqual(['m', 'r']);
  });

  it('aggregates time windows and raises / clears alerts', () => {
    store = FeedbackStore.open(home());
    store.write([row(0, 1, 1), row(1, 1, 2), row(2, 2, 2), row(5, 0, 0)], tasks, limits);
    const w = store.windows('m', '1.0.0', 3000);
    // Buckets start at multiples of 3 s: rows at 1000, 1001 | 1002 | 1005 s.
    expect(w.map((x) => [x.start, x.rows, x.correct])).toEqual([
      [999_000, 2, 1],
      [1_002_000, 1, 1],
      [1_005_000, 1, 1],
    ]);
    const a = store.raiseAlert({ model: 'm', version: '1.0.0', raisedAt: 5, live: 0.5, expected: 0.9, rows: 4, message: 'low' });
    expect(store.alerts({ open: true }).map((x) => x.id)).toEqual([a.id]);
    store.clearAlert(a.id, 6, 'back');
    expect(store.alerts({ open: true })).toEqual([]);
    expect(store.alerts({ model: 'm' })[0].clearReason).toBe('back');
  });
});

describe('prediction ring', () => {
  it('finds completed predictions by id, claims them once, and forgets expired ones', () => {
    const ids = new PredictionIds('abc');
    const ring = new PredictionRing(2, 3000);
    const firsts: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const first = ids.take(1);
      firsts.push(first);
      const start = ring.write(Float32Array.from([i, -i]), 1, first, i < 2000 ? '1' : '2', i);
      if (i !== 3500) ring.complete(start, first, [i % 10]);
    }
    expect(ring.size).toBe(3000);
    expect(ring.find(firsts[500])).toBeUndefined(); // expired
    expect(ring.find(firsts[3500])).toBeUndefined(); // never completed (its request failed)
    const e = ring.find(firsts[2500], true);
    expect(e).toMatchObject({ predicted: 0, version: '2', at: 2500 });
    expect(Array.from((e as { inputs: Float32Array }).inputs)).toEqual([2500, -2500]);
    expect(ring.find(firsts[2500], true)).toBe('duplicate');
    ring.unclaim(firsts[2500]);
    expect(ring.find(firsts[2500])).not.toBe('duplicate');
    expect(ids.parse(ids.format(firsts[3999]))).toBe(firsts[3999]);
    expect(ids.parse(`other-${firsts[1].toString(36)}`)).toBeUndefined();
    expect(ids.parse('abc-')).toBeUndefined();
    expect(ring.bytes).toBe(PredictionRing.bytesFor(2, 3000));
  });

  it('allocates nothing until the first row', () => {
    const ring = new PredictionRing(64, 20_000);
    expect(ring.bytes).toBe(0);
    ring.write(new Float32Array(64), 1, 1, 'v', 0);
    expect(ring.bytes).toBeLessThan(PredictionRing.bytesFor(64, 20_000) / 10);
  });
});

describe('window aggregates of live accuracy', () => {
  it('counts the open window on from the rows each flush stores, with the same figures as a full read', () => {
    const store = FeedbackStore.open(home());
    try {
      const W = 10_000;
      const at = (t: number, label: number, predicted: number | null): NewLabelledRow => ({ ...row(t, label, predicted), at: t });
      const write = (rows: NewLabelledRow[]) => (store.write(rows, tasks, { ...limits, maxRows: 1000 }), agg.add('m', rows));
      const agg = new WindowAggregates();
      const full = () => store.windows('m', '1.0.0', W, { limit: 3, sinceAt: 0 });
      // Two closed windows ([0, 10 s), [10 s, 20 s)) and the open one ([20 s, 30 s)).
      write([at(1_000, 1, 1), at(2_000, 1, 2), at(12_000, 0, 0), at(21_000, 2, 2)]);
      expect(agg.read(store, 'm', '1.0.0', W, 3, 25_000)).toEqual(full());
      // Counted on, not read again: a wrong prediction, a right one, one without a prediction, another version's.
      write([at(22_000, 2, 1), at(23_000, 1, 1), at(24_000, 1, null), { ...at(24_500, 1, 1), version: '2.0.0' }]);
      const again = agg.read(store, 'm', '1.0.0', W, 3, 26_000);
      expect(again).toEqual(full());
      expect(again.map((w) => [w.start, w.rows, w.correct])).toEqual([[0, 2, 1], [10_000, 1, 1], [20_000, 3, 2]]);
      // A row outside the open window (an import with an old time) makes the next read go to the store.
      write([at(15_000, 0, 0)]);
      expect(agg.read(store, 'm', '1.0.0', W, 3, 27_000)).toEqual(full());
      // A new open window: read again (the last one closed with what it had).
      write([at(31_000, 0, 0)]);
      expect(agg.read(store, 'm', '1.0.0', W, 3, 32_000).map((w) => [w.start, w.rows])).toEqual([[10_000, 2], [20_000, 3], [30_000, 1]]);
    } finally {
      store.close();
    }
  });
});
