import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModelSource, readBundle, writeBundle, type Manifest } from '../src/bundle/index.js';
import { loadModel, selectTfjsBackend, tfjsArtifacts, type Engine, type EngineOptions } from '../src/engine/index.js';
import { saveTfjsArtifacts, type TfjsQuantization } from '../src/training/tfjs-export.js';
import { digitsSample } from './helpers/fixtures.js';

const OPTS: EngineOptions = {
  onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  tfjs: { backends: ['tensorflow', 'wasm', 'cpu'] },
};
const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-engines-'));

/** A weight-quantized tfjs bundle made from the shipped float32 one, as the toolchain makes them. */
async function quantizedTfjsBundle(quantize: TfjsQuantization): Promise<string> {
  await selectTfjsBackend(OPTS.tfjs.backends);
  const { manifest, files } = await readBundle('models/digits-tfjs');
  const model = await tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(files, manifest.entry)));
  const artifacts = await saveTfjsArtifacts(model, { quantize });
  model.dispose();
  const dir = path.join(tmp, `digits-tfjs-${quantize}`);
  const { format: _f, artifacts: _a, ...draft } = manifest;
  await writeBundle(dir, { ...draft, name: `digits-tfjs-${quantize}`, quantization: quantize }, artifacts);
  return dir;
}

/** Raw fixture rows standardised as the daemon does before inference. */
function standardised(manifest: Manifest, rows: number[][]): Float32Array {
  const { mean, std } = manifest.preprocessing.standardize!;
  return Float32Array.from(rows.flatMap((r) => r.map((v, j) => (v - mean[j]) / (std[j] || 1))));
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

// One contract, every engine and weight format the daemon serves.
describe.each([
  { variant: 'onnx int8', bundle: async () => 'models/digits', runtime: 'onnx' },
  { variant: 'onnx float32', bundle: async () => 'models/digits-fp32', runtime: 'onnx' },
  { variant: 'tfjs float32', bundle: async () => 'models/digits-tfjs', runtime: 'tfjs' },
  { variant: 'tfjs uint8', bundle: () => quantizedTfjsBundle('uint8'), runtime: 'tfjs' },
  { variant: 'tfjs float16', bundle: () => quantizedTfjsBundle('float16'), runtime: 'tfjs' },
])('engine contract: $variant', ({ bundle, runtime }) => {
  let engine: Engine;
  let manifest: Manifest;

  beforeAll(async () => {
    ({ engine, manifest } = await loadModel(await openModelSource(await bundle()), OPTS));
  });
  afterAll(() => engine?.dispose());

  it('exposes its signature and backend', () => {
    expect(engine.runtime).toBe(runtime);
    expect(engine.backend).toMatch(runtime === 'onnx' ? /^cpu$/ : /^(tensorflow|wasm|cpu)$/);
    expect(engine.inputs[0]).toMatchObject({ name: 'input', dtype: 'float32', shape: [-1, 64] });
    expect(engine.outputs[0]).toMatchObject({ name: 'probabilities', shape: [-1, 10] });
  });

  it('classifies the fixture rows correctly in one batch', async () => {
    const n = digitsSample.rows.length;
    const out = await engine.run({ input: { dtype: 'float32', data: standardised(manifest, digitsSample.rows), dims: [n, 64] } });
    const probs = out.probabilities;
    expect(probs.dims).toEqual([n, 10]);
    for (let r = 0; r < n; r++) {
      const row = probs.data.subarray(r * 10, r * 10 + 10) as Float32Array;
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(argmax(row)).toBe(digitsSample.labels[r]);
    }
  });

  it('gives a row the same answer alone as inside a batch', async () => {
    const n = 8;
    const batch = standardised(manifest, digitsSample.rows.slice(0, n));
    const together = (await engine.run({ input: { dtype: 'float32', data: batch, dims: [n, 64] } })).probabilities.data as Float32Array;
    for (let r = 0; r < n; r++) {
      const alone = (await engine.run({ input: { dtype: 'float32', data: batch.slice(r * 64, r * 64 + 64), dims: [1, 64] } })).probabilities.data as Float32Array;
      for (let c = 0; c < 10; c++) expect(Math.abs(alone[c] - together[r * 10 + c])).toBeLessThan(1e-5);
    }
  });

  it('does not let the caller reuse its input buffer to change a finished result', async () => {
    const data = standardised(manifest, [digitsSample.rows[0]]);
    const out = await engine.run({ input: { dtype: 'float32', data, dims: [1, 64] } });
    const before = Array.from(out.probabilities.data as Float32Array);
    data.fill(0);
    expect(Array.from(out.probabilities.data as Float32Array)).toEqual(before);
  });
});

describe('tfjs backend selection', () => {
  it('skips the optional tfjs-node binding with a reason and lands on wasm', async () => {
    const choice = await selectTfjsBackend(['tensorflow', 'wasm', 'cpu']);
    let hasTfjsNode = true;
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      hasTfjsNode = false;
    }
    if (hasTfjsNode) expect(choice.backend).toBe('tensorflow');
    else {
      expect(choice.backend).toBe('wasm');
      expect(choice.skipped[0]).toMatch(/^tensorflow: /);
    }
  });
});
