import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE_FORMAT, parseManifest, type Manifest } from '../src/bundle/index.js';
import { DriftMonitor, DriftService, DriftStore, buildDriftProfile, driftOptions, maintain, type DriftEvent } from '../src/drift/index.js';

const homes: string[] = [];
const newHome = () => {
  const h = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-drift-store-'));
  homes.push(h);
  return h;
};
afterEach(() => {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

/** Three roughly normal features (deterministic), and a profile of them. */
function table(rows: number, seed: number, shift = 0): Float32Array {
  const x = new Float32Array(rows * 3);
  let s = seed;
  const u = () => ((s = (s * 1103515245 + 12345) % 2147483648) + 0.5) / 2147483648;
  for (let i = 0; i < x.length; i++) {
    const z = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
    x[i] = 10 + 2 * z + (i % 3 === 1 ? shift : 0);
  }
  return x;
}
const profile = buildDriftProfile({ features: ['a', 'b', 'c'], x: table(3000, 1), rows: 3000, task: 'embedding' }, { chunkRows: 0 });
const options = driftOptions({ window: { rows: 200, minRows: 100 } });

describe('DriftStore: windows and alerts survive a restart', () => {
  it('keeps the alert and streaks across a kill, losing only the open window', () => {
    const home = newHome();
    let store = DriftStore.open(home);
    let m = new DriftMonitor({ model: 'm', version: '1', profile, options, store });
    m.observe(table(400, 2, 6), 400); // b shifted by 3 stds: two drifting windows
    const events = m.flush();
    expect(events.map((e) => e.type)).toEqual(['drift-alert']);
    const alertId = events[0].alertId;
    expect(events[0].topFeatures[0].name).toBe('b');
    expect(events[0].windowId).toBeGreaterThan(0);
    m.observe(table(150, 3, 6), 150); // open, never flushed: what a kill -9 loses
    store.db.close(); // the process dies: no close(), no flush

    store = DriftStore.open(home);
    m = new DriftMonitor({ model: 'm', version: '1', profile, options, store });
    expect(m.activeAlert?.id).toBe(alertId);
    expect(m.status().consecutiveDrifting).toBe(2);
    expect(store.windows('m').map((w) => [w.rows, w.drift])).toEqual([
      [200, true],
      [200, true],
    ]);
    m.observe(table(600, 4), 600); // three clean windows clear it
    const cleared = m.flush();
    expect(cleared.map((e) => [e.type, e.alertId])).toEqual([['drift-clear', alertId]]);
    const stored = store.alert(alertId)!;
    expect(stored.clearedAt).toBeGreaterThan(stored.raisedAt);
    expect(stored.clearReason).toBe('3 consecutive clean windows');
    expect(stored.topFeatures.map((f) => f.name)).toContain('b');
    expect(store.windows('m')).toHaveLength(5);
    store.close();

    const ro = DriftStore.open(home, { readonly: true });
    expect(ro.states().map((s) => [s.model, s.consecutiveClean, s.active])).toEqual([['m', 3, undefined]]);
    ro.close();
  });

  it('clears an open alert when the model comes back with another reference profile', () => {
    const home = newHome();
    const store = DriftStore.open(home);
    const m = new DriftMonitor({ model: 'm', version: '1', profile, options, store });
    m.observe(table(400, 5, 6), 400);
    const [raised] = m.flush();
    const other = buildDriftProfile({ features: ['a', 'b', 'c'], x: table(3000, 9), rows: 3000, task: 'embedding' }, { chunkRows: 0, bins: 8 });
    const m2 = new DriftMonitor({ model: 'm', version: '2', profile: other, options, store });
    expect(m2.activeAlert).toBeUndefined();
    const events = m2.flush();
    expect(events.map((e) => [e.type, e.alertId])).toEqual([['drift-clear', raised.alertId]]);
    expect(events[0].message).toContain('reference profile changed (1 -> 2)');
    store.close();
  });

  it('rolls old windows up per hour (histograms add up) and deletes what is past retention', () => {
    const home = newHome();
    const store = DriftStore.open(home);
    const hour = 3_600_000;
    let now = Date.UTC(2026, 0, 1, 0, 0, 0);
    const m = new DriftMonitor({ model: 'm', version: '1', profile, options, store, now: () => now });
    for (let i = 0; i < 6; i++) {
      m.observe(table(200, 10 + i), 200); // one window every 20 minutes
      m.flush();
      now += hour / 3;
    }
    expect(store.windows('m')).toHaveLength(6);
    const r = maintain(store, options, now + 48 * hour);
    expect(r).toMatchObject({ rolledUp: 6, rollups: 2 });
    const rolled = store.windows('m', { histograms: true });
    expect(rolled.map((w) => [w.level, w.windows, w.rows])).toEqual([
      ['rollup', 3, 600],
      ['rollup', 3, 600],
    ]);
    expect(rolled[0].histograms!.counts.reduce((a, b) => a + b, 0)).toBe(3 * 600);
    expect(rolled[0].drift).toBe(false);
    expect(maintain(store, options, now + 91 * 24 * hour).deletedRollups).toBe(2);
    expect(store.windows('m')).toHaveLength(0);
    store.close();
  });
});

describe('DriftService: the daemon seam', () => {
  const manifest = (name: string, reference: unknown): Manifest =>
    parseManifest(
      {
        format: BUNDLE_FORMAT,
        name,
        version: '1.0.0',
        runtime: 'onnx',
        task: 'regression',
        entry: 'model.onnx',
        artifacts: [{ path: 'model.onnx', sha256: '0'.repeat(64), bytes: 1 }],
        inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 3] }],
        outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
        preprocessing: { standardize: { mean: [10, 10, 10], std: [2, 2, 2] } },
        reference,
      },
      name,
    );

  it('monitors models with a profile, writes all of them in one flush, calls back after commit, survives a restart', () => {
    const home = newHome();
    const alerts: DriftEvent[] = [];
    const svc = DriftService.open(home, { options: { window: { rows: 200, minRows: 100 } }, onAlert: (e) => alerts.push(e) });
    expect(svc.attach({ name: 'bare', version: '1', manifest: manifest('bare', undefined) })).toBeUndefined();
    expect(svc.attach({ name: 'odd', version: '1', manifest: manifest('odd', { format: 'edgeloop-reference/1', features: [] }) })).toBeUndefined();
    const a = svc.attach({ name: 'a', version: '1.0.0', manifest: manifest('a', profile) }, { inputs: 'standardized' })!;
    const b = svc.attach({ name: 'b', version: '1.0.0', manifest: manifest('b', profile) })!;
    expect(a.inputs).toBe('standardized');
    // a: standardised feed of shifted rows; b: clean raw rows
    const shifted = table(400, 20, 6).map((v) => (v - 10) / 2);
    a.observe(shifted, 400, Array.from({ length: 400 }, () => ({ value: 1 })));
    b.observe(table(400, 21), 400);
    b.observe(table(50, 22), 50); // open window of b
    // observe() never writes: the closed windows wait in memory for the flush.
    expect(svc.store!.windows('a')).toHaveLength(0);
    expect(svc.status().models.map((m) => m.pendingWindows)).toEqual([2, 2]);
    svc.flush();
    expect(svc.store!.windows('a')).toHaveLength(2);
    expect(alerts.map((e) => [e.model, e.type, e.topFeatures[0]?.name])).toEqual([['a', 'drift-alert', 'b']]);
    expect(svc.status().models.map((m) => [m.model, m.openWindow.rows, m.alert?.features[0] ?? null])).toEqual([
      ['a', 0, 'b'],
      ['b', 50, null],
    ]);
    // A new version of b: its open window is written first.
    svc.attach({ name: 'b', version: '1.1.0', manifest: manifest('b', profile) });
    expect(svc.store!.windows('b').map((w) => [w.rows, w.closeReason])).toEqual([
      [200, 'rows'],
      [200, 'rows'],
      [50, 'detach'],
    ]);
    svc.close();

    const again = DriftService.open(home, { options: { window: { rows: 200, minRows: 100 } } });
    expect(again.attach({ name: 'a', version: '1.0.0', manifest: manifest('a', profile) })!.activeAlert?.id).toBe(alerts[0].alertId);
    again.close();
  });
});
