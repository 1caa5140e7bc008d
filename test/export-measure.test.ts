import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../src/bundle/index.js';
import { EVAL_ENGINE_OPTIONS, exportBundle, recommend, type Candidate, type ExportResult } from '../src/training/index.js';

const speed = (b1: number, b32: number) => [
  { batch: 1, callsPerSecond: b1, rowsPerSecond: b1 },
  { batch: 32, callsPerSecond: b32 / 32, rowsPerSecond: b32 },
];

describe('recommend: the fastest variant within tolerance, never slower than float32', () => {
  const fp32: Candidate = { name: 'onnx-fp32', withinTolerance: true, throughput: speed(1000, 10_000) };

  it('picks a variant that is within tolerance and faster at every batch size', () => {
    const r = recommend([fp32, { name: 'onnx-int8-static', withinTolerance: true, throughput: speed(1500, 20_000) }], 'onnx-fp32');
    expect(r.name).toBe('onnx-int8-static');
    expect(r.speedup).toEqual({ 1: 1.5, 32: 2 });
    expect(r.fastest).toEqual({ 1: 'onnx-int8-static', 32: 'onnx-int8-static' });
  });

  it('keeps float32 when the faster variant is beyond the tolerance', () => {
    const r = recommend([fp32, { name: 'onnx-int8', withinTolerance: false, throughput: speed(5000, 50_000) }], 'onnx-fp32');
    expect(r.name).toBe('onnx-fp32');
    expect(r.speedup).toEqual({ 1: 1, 32: 1 });
    expect(r.fastest).toEqual({ 1: 'onnx-fp32', 32: 'onnx-fp32' });
  });

  it('keeps float32 when a variant is faster at batch 32 only, and names it as the fastest there', () => {
    const r = recommend([fp32, { name: 'onnx-int8-static', withinTolerance: true, throughput: speed(700, 15_000) }], 'onnx-fp32');
    expect(r.name).toBe('onnx-fp32');
    expect(r.fastest).toEqual({ 1: 'onnx-fp32', 32: 'onnx-int8-static' });
  });

  it('takes the best worst-case speed-up, counts unchecked accuracy as eligible, and needs the baseline', () => {
    const candidates: Candidate[] = [
      { ...fp32, withinTolerance: false }, // the reference speed whatever its own check says
      { name: 'a', throughput: speed(3000, 11_000) }, // worst 1.1x
      { name: 'b', throughput: speed(1300, 13_000) }, // worst 1.3x
    ];
    expect(recommend(candidates, 'onnx-fp32').name).toBe('b');
    expect(recommend(candidates, 'onnx-fp32').fastest).toEqual({ 1: 'a', 32: 'b' });
    expect(() => recommend(candidates.slice(1), 'onnx-fp32')).toThrow(/baseline/);
  });
});

describe('edgeloop export measures and recommends (real bundle, real ONNX Runtime)', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-export-measure-'));
  const source = 'models/digits-cnn-tfjs';
  let r: ExportResult;

  beforeAll(async () => {
    tf.env().set('PROD', true);
    r = await exportBundle({
      source,
      targets: [
        { variant: 'onnx-int8-static', dir: path.join(tmp, 'static'), name: 'digits-cnn-static' },
        { variant: 'tfjs-uint8', dir: path.join(tmp, 'uint8'), name: 'digits-cnn-uint8' },
      ],
      data: 'data/digits.csv',
      engine: EVAL_ENGINE_OPTIONS,
      measure: { ms: 40 },
      tolerance: 0.01,
    });
  }, 120_000);

  it('measures the source, every export and the float32 ONNX reference at batch 1 and 32', async () => {
    expect(r.models.map((m) => m.variant)).toEqual(['source', 'onnx-int8-static', 'tfjs-uint8', 'onnx-fp32']);
    expect(r.baseline).toBe('onnx-fp32');
    for (const m of r.models) {
      expect(m.throughput.map((t) => t.batch), m.variant).toEqual([1, 32]);
      for (const t of m.throughput) expect(t.rowsPerSecond, m.variant).toBeCloseTo(t.callsPerSecond * t.batch, 6);
      expect(m.throughput.every((t) => t.rowsPerSecond > 0), m.variant).toBe(true);
      expect(m.score, m.variant).toBeGreaterThan(0.9);
      expect(m.withinTolerance, m.variant).toBe(-m.scoreChange! <= 0.01 + 1e-9);
    }
    // The reference is measured in memory only; the exports are written.
    const reference = r.models[3];
    expect([reference.written, reference.dir]).toEqual([false, undefined]);
    expect(existsSync(path.join(tmp, 'static'))).toBe(true);
    expect((await readManifest(path.join(tmp, 'static'))).quantization).toBe('int8');
    expect(r.exported.map((e) => e.target.variant)).toEqual(['onnx-int8-static', 'tfjs-uint8']);
  });

  it('recommends a measured variant within tolerance that is never slower than float32', () => {
    const rec = r.recommendation!;
    const chosen = r.models.find((m) => m.variant === rec.name)!;
    expect(chosen).toBeDefined();
    expect(chosen.withinTolerance).toBe(true);
    const fp32 = r.models.find((m) => m.variant === 'onnx-fp32')!;
    for (const b of [1, 32]) {
      const rate = (m: typeof fp32) => m.throughput.find((t) => t.batch === b)!.rowsPerSecond;
      expect(rate(chosen), `batch ${b}`).toBeGreaterThanOrEqual(rate(fp32));
      expect(rec.speedup[b]).toBeCloseTo(rate(chosen) / rate(fp32), 9);
      // The fastest within tolerance at each batch size is at least as fast as the recommendation.
      const fastest = r.models.find((m) => m.variant === rec.fastest[b])!;
      expect(fastest.withinTolerance).toBe(true);
      expect(rate(fastest)).toBeGreaterThanOrEqual(rate(chosen));
    }
  });

  it('with measuring off: scores only, no reference, no recommendation', async () => {
    const off = await exportBundle({ source, targets: [{ variant: 'onnx-int8', dir: path.join(tmp, 'dynamic'), name: 'digits-cnn-int8' }], data: 'data/digits.csv', engine: EVAL_ENGINE_OPTIONS, measure: false });
    expect(off.models.map((m) => m.variant)).toEqual(['source', 'onnx-int8']);
    expect(off.models.every((m) => m.throughput.length === 0 && m.score !== undefined)).toBe(true);
    expect(off.recommendation).toBeUndefined();
    await expect(exportBundle({ source, targets: [{ variant: 'onnx-int8', dir: path.join(tmp, 'bad'), name: 'x' }], engine: EVAL_ENGINE_OPTIONS, tolerance: -1 })).rejects.toThrow(/tolerance/);
  }, 60_000);
});
