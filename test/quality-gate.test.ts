import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { loadServedModel } from '../src/daemon/load-models.js';
import type { ServedModel } from '../src/engine/index.js';
import { gateRows, runGate, scoreModel, tallyLabelled, PairedTally, type GatePolicy } from '../src/quality/index.js';
import { batchOf, digitsRows, editedVersion, MemoryLabelledRows } from './helpers/quality.js';

const config = resolveConfig({ home: 'unused' }, {}, {});
const log = pino({ level: 'silent' });
const load = (dir: string) => loadServedModel(dir, config, { ...config.serving }, log);
const policy: GatePolicy = config.registry.gate;
const digits = digitsRows();

let onnx: ServedModel;
let tfjs: ServedModel;
let permuted: ServedModel;
let diabetes: ServedModel;
beforeAll(async () => {
  onnx = await load('models/digits');
  tfjs = await load('models/digits-tfjs');
  // Labels rotated by one: the network is the same, every answer is named wrongly.
  permuted = await load(await editedVersion('models/digits', '1.1.0', (m) => ((m.labels as string[]).push((m.labels as string[]).shift()!))));
  diabetes = await load('models/diabetes');
});
afterAll(async () => {
  await Promise.all([onnx, tfjs, permuted, diabetes].map((m) => m?.dispose()));
});

describe('scoring on labelled raw rows', () => {
  it('scores the shipped digits models on their anchor set, ONNX and tfjs alike, and leaves the rows raw', async () => {
    for (const m of [onnx, tfjs]) {
      const set = await gateRows(m, undefined, undefined, 0);
      expect(set).toMatchObject({ rows: 32, anchorRows: 32, holdoutRows: 0, features: 64 });
      const before = set.x.slice();
      const s = await scoreModel(m, set, { maxBatch: 5 });
      expect(s.accuracy).toBeGreaterThanOrEqual(0.95);
      expect(s.macroF1).toBeGreaterThan(0.9);
      expect(set.x).toEqual(before);
      expect([...s.predicted].every((p) => Number.isInteger(p) && p >= 0 && p < 10)).toBe(true);
    }
  });

  it('adds the newest holdout rows and names their labels with the serving labels', async () => {
    const labelled = new MemoryLabelledRows();
    labelled.add('digits', digits.rows.slice(0, 300), digits.labels.slice(0, 300), true, '1.0.0');
    labelled.add('digits', digits.rows.slice(300, 400), digits.labels.slice(300, 400), false, '1.0.0');
    const set = await gateRows(onnx, onnx, labelled, 100);
    expect(set).toMatchObject({ anchorRows: 32, holdoutRows: 100, rows: 132 });
    expect(set.truth.slice(32)).toEqual(digits.labels.slice(200, 300).reverse().map(String));
    expect((await scoreModel(onnx, set)).accuracy).toBeGreaterThan(0.95);
  });

  it('regression: MAE and RMSE on the anchor values', async () => {
    const set = await gateRows(diabetes, undefined, undefined, 0);
    const s = await scoreModel(diabetes, set);
    expect(set.task).toBe('regression');
    expect(s.mae).toBeGreaterThan(10);
    expect(s.mae).toBeLessThan(100);
    expect(s.rmse!).toBeGreaterThanOrEqual(s.mae!);
  });
});

describe('the gate on real models', () => {
  it('passes the same network in another runtime, with the numbers', async () => {
    const r = await runGate(tfjs, onnx, { policy });
    expect(r.pass).toBe(true);
    expect(r.reason).toMatch(/^gate passed: accuracy \d+\.\d% vs \d+\.\d% for 1\.0\.0 on 32 labelled rows \(32 anchor, 0 holdout\); \d+ of 32 paired rows right/);
  });

  it('refuses a version whose labels are permuted: below minAccuracy, worse than the serving one', async () => {
    const r = await runGate(permuted, onnx, { policy });
    expect(r.pass).toBe(false);
    expect(r.target!.accuracy).toBeLessThan(0.2);
    expect(r.reason).toMatch(/^gate refused digits@1\.1\.0: accuracy \d+\.\d% on 32 labelled rows .* below registry\.gate\.minAccuracy 50\.0% vs 100\.0% for 1\.0\.0/);
    expect(r.paired!.b).toBeGreaterThan(25);
  });

  it('passes models it cannot score, and the gate can be turned off', async () => {
    const noAnchor = await load(await editedVersion('models/digits', '1.2.0', (m) => delete (m.reference as Record<string, unknown>).anchor));
    try {
      expect(await runGate(noAnchor, undefined, { policy })).toMatchObject({ pass: true, reason: expect.stringMatching(/no labelled rows/) });
    } finally {
      await noAnchor.dispose();
    }
    expect((await runGate(permuted, onnx, { policy: { ...policy, enabled: false } })).pass).toBe(true);
  });

  it('a shadow comparison on fresh labelled rows tallies the pairs', async () => {
    const tally = new PairedTally('classification', onnx.version);
    // The feedback store keeps a label as an index of the version serving then (here the permuted one).
    const asIndex = digits.labels.slice(0, 50).map((d) => permuted.manifest.labels!.indexOf(String(d)));
    const added = await tallyLabelled(tally, permuted, onnx, batchOf(digits.rows.slice(0, 50), asIndex, '1.1.0'));
    expect(added).toBe(50);
    expect(tally.oldRight).toBeGreaterThan(45);
    expect(tally.newRight).toBeLessThan(10);
    expect(tally.judge({ ...policy, alpha: 0.01 }).worse).toBe(true);
  });
});
