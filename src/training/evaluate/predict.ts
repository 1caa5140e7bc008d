import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Manifest } from '../../bundle/index.js';
import type { Engine } from '../../engine/index.js';
// Here for the toolchain's importers; it lives beside the standardiser so the daemon can use it without tfjs.
export { standardizeLikeDaemon } from '../data/standardize.js';

/** Runs one batch of model-ready (already standardised) rows; returns the first output, row-major. */
export type Predict = (x: Float32Array, rows: number) => Promise<Float32Array>;

/** A loaded engine's first output. */
export function enginePredict(engine: Engine): Predict {
  const input = engine.inputs[0];
  const output = engine.outputs[0].name;
  return async (x, rows) => {
    const out = await engine.run({ [input.name]: { dtype: 'float32', data: x, dims: [rows, ...input.shape.slice(1)] } });
    return Float32Array.from(out[output].data as Float32Array);
  };
}

/** A tfjs model in memory (e.g. the one just trained). */
export function layersPredict(model: tfl.LayersModel): Predict {
  const shape = model.inputs[0].shape.slice(1) as number[];
  return async (x, rows) => {
    const input = tf.tensor(x, [rows, ...shape]);
    const y = model.predict(input) as tf.Tensor;
    try {
      return Float32Array.from(await y.data());
    } finally {
      tf.dispose([input, y]);
    }
  };
}

/** Run every row through `predict` in batches; returns outputs and their width. */
export async function predictAll(predict: Predict, x: Float32Array, rows: number, batch = 256): Promise<{ data: Float32Array; width: number }> {
  const rowSize = x.length / rows;
  const parts: Float32Array[] = [];
  for (let r = 0; r < rows; r += batch) {
    const n = Math.min(batch, rows - r);
    parts.push(await predict(x.subarray(r * rowSize, (r + n) * rowSize), n));
  }
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { data, width: rows > 0 ? data.length / rows : 0 };
}

/** Softmax each row when the model emits logits (or 'auto' and the row is not a distribution), as the daemon does. */
export function toProbabilities(data: Float32Array, width: number, kind: Manifest['outputKind']): Float32Array {
  if (kind === 'probabilities') return data;
  const out = new Float32Array(data.length);
  for (let r = 0; r < data.length / width; r++) {
    const row = data.subarray(r * width, (r + 1) * width);
    let sum = 0;
    let inRange = true;
    for (const v of row) {
      sum += v;
      if (v < 0 || v > 1) inRange = false;
    }
    if (kind === 'auto' && inRange && Math.abs(sum - 1) < 1e-3) {
      out.set(row, r * width);
      continue;
    }
    const max = Math.max(...row);
    let z = 0;
    for (let c = 0; c < width; c++) z += Math.exp(row[c] - max);
    for (let c = 0; c < width; c++) out[r * width + c] = Math.exp(row[c] - max) / z;
  }
  return out;
}

/** Index of the largest value of each row. */
export function argmaxRows(data: Float32Array, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < data.length / width; r++) {
    let best = 0;
    for (let c = 1; c < width; c++) if (data[r * width + c] > data[r * width + best]) best = c;
    out.push(best);
  }
  return out;
}
