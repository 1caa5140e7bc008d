import { beforeAll, describe, expect, it } from 'vitest';
import { openModelSource, parseReference, readManifest, type ReferenceProfile } from '../src/bundle/index.js';
import { DriftMonitor, buildDriftProfile, driftOptions, readReferenceCsv, runModelOnTable, type DriftEvent, type PredictionLike, type ProfileData } from '../src/drift/index.js';
import { buildLayout, rangeBinned } from '../src/drift/layout.js';

/**
 * Features whose quantile bins collapse (nearly always 0: corner pixels of digits) get range bins
 * at attach time, so a change inside the one reference bin is seen, with the profile shipped in
 * the bundle (built with the old binning) as with a fresh one.
 */
let data: ProfileData;
let fresh: ReferenceProfile;
let shipped: ReferenceProfile;
const WINDOW = 300;

beforeAll(async () => {
  const run = await runModelOnTable(await openModelSource('models/digits'), await readReferenceCsv('data/digits.csv', 64));
  data = run.data;
  fresh = buildDriftProfile(data, { chunkRows: 300 });
  shipped = parseReference((await readManifest('models/digits')).reference, 'models/digits');
});

const monitorOf = (p: ReferenceProfile) => new DriftMonitor({ model: 'digits', version: '1.0.0', profile: p, options: driftOptions({ window: { rows: WINDOW, minRows: 100 } }) });

function replay(seed: number, rows: number, fault?: (x: Float32Array) => void): { x: Float32Array; preds: PredictionLike[] } {
  const x = new Float32Array(rows * 64);
  const preds: PredictionLike[] = [];
  let s = seed;
  for (let i = 0; i < rows; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const r = s % data.rows;
    x.set(data.x.subarray(r * 64, r * 64 + 64), i * 64);
    preds.push(data.predictions![r]);
    fault?.(x.subarray(i * 64, i * 64 + 64));
  }
  return { x, preds };
}

function feed(m: DriftMonitor, x: Float32Array, preds: PredictionLike[], rows: number): DriftEvent[] {
  const events: DriftEvent[] = [];
  for (let r = 0; r < rows; r += 10) {
    m.observe(x.subarray(r * 64, (r + 10) * 64), 10, preds.slice(r, r + 10));
    if ((r + 10) % WINDOW === 0) events.push(...m.flush());
  }
  return events;
}

describe('drift on features whose quantile bins collapse', () => {
  it('the shipped profile has collapsed features; the layout splits them over their range', () => {
    const f = shipped.features.find((x) => x.name === 'pixel_0_7')!;
    expect(f.counts).toHaveLength(1); // one quantile bin [0, 15] holds every row
    const r = rangeBinned(f)!;
    expect(r.edges.length).toBeGreaterThan(f.edges.length + 4);
    expect(r.counts.reduce((a, b) => a + b, 0)).toBeCloseTo(f.counts[0], 6);
    expect(r.edges[0]).toBe(0);
    expect(r.edges.at(-1)).toBe(15);
    const layout = buildLayout(shipped);
    expect(layout.channels.filter((c) => c.rangeBinned).map((c) => c.name)).toContain('pixel_0_7');
    expect(layout.channels.find((c) => c.name === 'pixel_2_4')!.rangeBinned).toBeUndefined();
    // A constant feature needs none: any other value falls outside its only edge.
    expect(rangeBinned(shipped.features.find((x) => x.name === 'pixel_0_0')!)).toBeUndefined();
  });

  it('raises no alert on 30 windows of reference data, with either profile', () => {
    for (const p of [shipped, fresh]) {
      const m = monitorOf(p);
      const { x, preds } = replay(7, 30 * WINDOW);
      expect(feed(m, x, preds, 30 * WINDOW)).toEqual([]);
      // and in file order (writer batches), as the existing drift tests do
      const ordered = monitorOf(p);
      expect(feed(ordered, data.x, data.predictions!, 5 * WINDOW)).toEqual([]);
    }
  });

  for (const corner of ['pixel_0_0', 'pixel_0_7', 'pixel_7_0', 'pixel_7_7']) {
    it(`a corner pixel (${corner}) stuck at 8 on every row raises a drift alert naming it, with either profile`, () => {
      for (const p of [shipped, fresh]) {
        const j = p.features.findIndex((f) => f.name === corner);
        const m = monitorOf(p);
        const clean = replay(11, 2 * WINDOW);
        expect(feed(m, clean.x, clean.preds, 2 * WINDOW)).toEqual([]);
        const bad = replay(13, 2 * WINDOW, (row) => (row[j] = 8));
        const events = feed(m, bad.x, bad.preds, 2 * WINDOW);
        expect(events.map((e) => e.type)).toEqual(['drift-alert']);
        expect(events[0].topFeatures.map((t) => t.name)).toContain(corner);
        expect(m.status().alert?.features).toContain(corner);
      }
    });
  }
});
