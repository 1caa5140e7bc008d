import { beforeAll, describe, expect, it } from 'vitest';
import { openModelSource, parseReference, readManifest, type ReferenceProfile } from '../src/bundle/index.js';
import { DriftMonitor, buildDriftProfile, driftOptions, readReferenceCsv, runModelOnTable, slotOf, type DriftEvent, type DriftOptionsInput, type PredictionLike, type ProfileData } from '../src/drift/index.js';
import { buildLayout } from '../src/drift/layout.js';

let data: ProfileData;
let profile: ReferenceProfile;
/** The profile the training toolchain wrote into the shipped bundle (train split bins, validation predictions). */
let shipped: ReferenceProfile | undefined;
let standardize: { mean: number[]; std: number[] };

beforeAll(async () => {
  const source = await openModelSource('models/digits');
  const table = await readReferenceCsv('data/digits.csv', 64);
  const run = await runModelOnTable(source, table);
  data = run.data;
  standardize = run.manifest.preprocessing.standardize!;
  profile = buildDriftProfile(data, { chunkRows: 300 });
  const m = await readManifest('models/digits');
  shipped = m.reference ? parseReference(m.reference, 'models/digits') : undefined;
});

const WINDOW = 300;
const monitorOf = (opts: DriftOptionsInput = {}, now?: () => number, p = profile) =>
  new DriftMonitor({ model: 'digits', version: '1.0.0', profile: p, options: driftOptions({ window: { rows: WINDOW, minRows: 100 }, ...opts }), now });

/** `rows` reference rows in a shuffled order (deterministic), with `fault` applied to a copy. */
function replay(seed: number, rows: number, fault?: (x: Float32Array, r: number) => void): { x: Float32Array; preds: PredictionLike[] } {
  const x = new Float32Array(rows * 64);
  const preds: PredictionLike[] = [];
  let s = seed;
  for (let i = 0; i < rows; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const r = s % data.rows;
    x.set(data.x.subarray(r * 64, r * 64 + 64), i * 64);
    preds.push(data.predictions![r]);
    fault?.(x.subarray(i * 64, i * 64 + 64), r);
  }
  return { x, preds };
}

/** Observe in requests of 10 rows (as served), flushing after each window; events and the window at which each came. */
function feed(m: DriftMonitor, x: Float32Array, preds: PredictionLike[], rows: number): { events: DriftEvent[]; windows: number } {
  const events: DriftEvent[] = [];
  let windows = 0;
  for (let r = 0; r < rows; r += 10) {
    m.observe(x.subarray(r * 64, (r + 10) * 64), Math.min(10, rows - r), preds.slice(r, r + 10));
    if ((r + 10) % WINDOW === 0) {
      windows++;
      events.push(...m.flush());
    }
  }
  return { events, windows };
}

const feature = (name: string) => profile.features.findIndex((f) => f.name === name);

describe('DriftMonitor on the digits model', () => {
  it('raises no alert while the reference data is replayed', () => {
    const m = monitorOf();
    const { x, preds } = replay(7, 30 * WINDOW);
    const { events, windows } = feed(m, x, preds, 30 * WINDOW);
    expect(windows).toBe(30);
    expect(events).toEqual([]);
    expect(m.status().alert).toBeNull();
  });

  it('raises no alert on the file replayed in order (batches of writers), with either profile', () => {
    for (const p of [profile, shipped ?? profile]) {
      const m = monitorOf({}, undefined, p);
      const rows = 5 * WINDOW;
      const events: DriftEvent[] = [];
      for (let pass = 0; pass < 2; pass++) events.push(...feed(m, data.x, data.predictions!, rows).events);
      expect(events).toEqual([]);
    }
    // With JS 0.1 and Wasserstein 0.1 std as drivers too, some in-order windows do drift: the writer
    // batches differ that much (real, but mild: PSI stays under 0.25).
    const drifting = (drivers: ('psi' | 'js' | 'wasserstein')[]) => {
      const m = monitorOf({ thresholds: { drivers } });
      m.observe(data.x, 5 * WINDOW, data.predictions);
      return m.collect()!.records.filter((r) => r.scores.drift).length;
    };
    expect(drifting(['psi'])).toBe(0);
    expect(drifting(['psi', 'js', 'wasserstein'])).toBeGreaterThan(0);
  });

  // pixel_2_3: mean 7.0, std 5.8 on the reference; pixel_3_4: mean 10.1, std 6.2
  const faults: [string, string, (f: ReferenceProfile['features'][number]) => (v: number) => number][] = [
    ['a shift by one reference std', 'pixel_2_3', (f) => (v) => v + f.std],
    ['a scale change (x1.5 around the mean)', 'pixel_3_4', (f) => (v) => f.mean + 1.5 * (v - f.mean)],
    ['a stuck-at-zero sensor', 'pixel_3_4', () => () => 0],
  ];
  for (const [what, name, makeFault] of faults) {
    it(`alerts within two windows on ${what}, naming the feature (both profiles)`, () => {
      for (const p of [profile, shipped ?? profile]) check(p);
    });
    const check = (p: ReferenceProfile) => {
      const m = monitorOf({}, undefined, p);
      const j = feature(name);
      const fn = makeFault(p.features[j]);
      const clean = replay(11, 2 * WINDOW);
      expect(feed(m, clean.x, clean.preds, 2 * WINDOW).events).toEqual([]);
      const bad = replay(13, 2 * WINDOW, (row) => (row[j] = fn(row[j])));
      const { events } = feed(m, bad.x, bad.preds, 2 * WINDOW);
      expect(events.map((e) => e.type)).toEqual(['drift-alert']);
      expect(events[0].topFeatures[0].name).toBe(name);
      expect(events[0].windows).toBe(2);
      expect(events[0].message).toContain(name);
      expect(m.status().alert?.features[0]).toBe(name);
    };
  }

  it('clears the alert after three clean windows', () => {
    const m = monitorOf();
    const j = feature('pixel_2_3');
    const bad = replay(17, 2 * WINDOW, (row) => (row[j] = 0));
    expect(feed(m, bad.x, bad.preds, 2 * WINDOW).events.map((e) => e.type)).toEqual(['drift-alert']);
    const clean = replay(19, 3 * WINDOW);
    const cleared = feed(m, clean.x, clean.preds, 3 * WINDOW).events;
    expect(cleared.map((e) => e.type)).toEqual(['drift-clear']);
    expect(cleared[0].alertId).toBeGreaterThan(0);
    expect(m.activeAlert).toBeUndefined();
  });

  it('counts standardised feeds (ServedModel after predict) exactly as raw rows', () => {
    const raw = monitorOf();
    const std = new DriftMonitor({ model: 'digits', version: '1', profile, options: driftOptions({ window: { rows: WINDOW, minRows: 100 } }), inputs: 'standardized', standardize });
    const { x, preds } = replay(23, WINDOW);
    // ServedModel.predict: (x - mean) * invStd in float32, in place
    const mean = Float32Array.from(standardize.mean);
    const inv = Float32Array.from(standardize.std, (s) => (s > 0 ? 1 / s : 1));
    const s = Float32Array.from(x);
    for (let i = 0; i < s.length; i++) s[i] = (s[i] - mean[i % 64]) * inv[i % 64];
    raw.observe(x, WINDOW, preds);
    std.observe(s, WINDOW, preds);
    const a = raw.collect()!.records[0];
    const b = std.collect()!.records[0];
    for (let j = 0; j < 64; j++) {
      expect(Array.from(b.window.slots(j)), profile.features[j].name).toEqual(Array.from(a.window.slots(j)));
      expect(b.window.sum[j]).toBeCloseTo(a.window.sum[j], 1);
      expect(Math.abs(b.window.sumSq[j] - a.window.sumSq[j])).toBeLessThanOrEqual(1e-4 * Math.max(1, a.window.sumSq[j]));
      expect(b.scores.channels[j].psi).toBeCloseTo(a.scores.channels[j].psi, 9);
    }
    // Projection components are computed in float32 either way: a value on a bin edge may round across it.
    for (let c = 64; c < 68; c++) {
      const d = Array.from(b.window.slots(c)).map((v, i) => Math.abs(v - a.window.slots(c)[i]));
      expect(Math.max(...d)).toBeLessThanOrEqual(2);
    }
  });

  it('bins every value as the profile binning says (lookup grid vs search)', () => {
    const m = monitorOf({ window: { rows: 1_000_000 } });
    const x = new Float32Array(64 * 200);
    for (let i = 0; i < x.length; i++) x[i] = Math.round(((i * 2654435761) % 4000) / 100 - 10) / 2; // -10 .. 30, halves and integers
    m.observe(x, 200);
    m.close('rows');
    const w = m.collect()!.records[0].window;
    // The layout's edges: the profile's, with range bins where its quantile bins collapsed.
    buildLayout(profile).channels.slice(0, 64).forEach((f, j) => {
      const expected = new Array<number>(f.edges.length + 1).fill(0);
      for (let r = 0; r < 200; r++) expected[slotOf(f.edges, x[r * 64 + j])]++;
      expect(Array.from(w.slots(j)), f.name).toEqual(expected);
    });
  });

  it('closes windows by time once they have minRows rows, and idle ones after maxMs', () => {
    let now = 1_000_000;
    const m = monitorOf({ window: { rows: 10_000, ms: 60_000, minRows: 50, maxMs: 3_600_000 } }, () => now);
    const { x, preds } = replay(29, 40);
    m.observe(x, 40, preds);
    now += 61_000;
    expect(m.flush()).toEqual([]);
    expect(m.openRows).toBe(40); // too few rows: still open
    m.observe(x, 20, preds);
    now += 1000;
    const p = m.collect()!;
    expect(p.records.map((r) => [r.window.closeReason, r.window.rows, r.scores.judged])).toEqual([['time', 60, true]]);
    m.committed(p);
    m.observe(x, 5, preds);
    now += 3_600_000;
    const q = m.collect()!;
    expect(q.records.map((r) => [r.window.closeReason, r.window.rows])).toEqual([['idle', 5]]);
  });

  it('samples a share of the rows when asked', () => {
    const m = monitorOf({ sample: 0.25, window: { rows: 1_000_000 } });
    const { x, preds } = replay(31, 4000);
    m.observe(x, 4000, preds);
    expect(m.openRows).toBeGreaterThan(850);
    expect(m.openRows).toBeLessThan(1150);
  });

  it('flags rows far outside the reference range', () => {
    const m = monitorOf();
    const { x } = replay(37, 4);
    x[64 + 5] = 40; // row 1: a pixel at 40 (range 0..16)
    x[3 * 64 + 9] = Number.NaN; // row 3: not a number
    const flags = new Uint8Array(4);
    expect(m.outOfDistribution(x, 4, flags)).toBe(2);
    expect(Array.from(flags)).toEqual([0, 1, 0, 1]);
  });
});
