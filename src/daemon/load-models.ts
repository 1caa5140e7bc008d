import type { Logger } from 'pino';
import { openModelSource, type TensorSpec } from '../bundle/index.js';
import { loadModel, ServedModel, TYPED_ARRAYS, type BatcherOptions, type EngineOptions, type EngineTensor, type TypedArray } from '../engine/index.js';
import { fromHalf, toHalf } from '../tensor/index.js';

/** Open, verify, load and warm up one model. */
export async function loadServedModel(p: string, engineOpts: EngineOptions, batcherOpts: BatcherOptions, log?: Logger): Promise<ServedModel> {
  const source = await openModelSource(p);
  const { manifest, engine } = await loadModel(source, engineOpts, log);
  try {
    const model = new ServedModel(manifest, engine, batcherOpts);
    await warmUp(model, log);
    return model;
  } catch (err) {
    await engine.dispose();
    throw err;
  }
}

/**
 * One zero run through the engine so the first real request does not pay for lazy init. The
 * feed follows each input's declared shape: a dynamic dimension becomes 1, a fixed one is kept
 * (a model with a fixed batch of 3 gets 3 rows), a scalar stays a scalar. Then a probe tells
 * whether the model's outputs follow its rows: only then do tensor requests share engine calls
 * (the micro-batcher) with others.
 */
async function warmUp(model: ServedModel, log?: Logger): Promise<void> {
  try {
    await model.engine.run(zeroFeeds(model.engine.inputs));
    // Replies read the first output only: with more outputs that is a run of its own in the
    // engine (its first call cost ~0.2 ms); with one it is the run above.
    if (model.engine.outputs.length > 1) await model.engine.run(zeroFeeds(model.engine.inputs), { firstOnly: true });
  } catch (zeros) {
    // Zeros are values some models refuse (a modulus, a shape or a count as an input): the
    // session loaded, so try ones, and serve anyway if those fail too (requests will tell).
    try {
      await model.engine.run(zeroFeeds(model.engine.inputs, 1));
    } catch {
      log?.warn({ model: model.name, version: model.version, err: (zeros as Error).message.split('\n')[0] }, 'warm-up run refused zero and one inputs; serving without a warm-up');
      return;
    }
  }
  model.batchable = await followsRows(model);
}

/**
 * Whether a model's outputs follow its rows: declared as rows (first dimension dynamic, the rest
 * fixed, no strings), and seen to: three different rows run together give, row for row, what each
 * gives alone (and 3 output rows of the same shape as 1). Shapes alone would let a model that
 * mixes its rows (a cumulative sum, a sequence model over [T, C]) answer one client with another's
 * data. Four small runs at load.
 */
async function followsRows(model: ServedModel): Promise<boolean> {
  const { inputs, outputs } = model.engine;
  const rowLike = (s: TensorSpec) => s.dtype !== 'string' && s.shape.length >= 1 && s.shape[0] < 0 && s.shape.slice(1).every((d) => d > 0);
  if (inputs.length === 0 || !inputs.every(rowLike) || outputs.some((o) => o.dtype === 'string')) return false;
  try {
    const rows = [0, 1, 2].map((r) => probeRow(inputs, r));
    const together = await model.engine.run(Object.fromEntries(inputs.map((s) => [s.name, concatRows(s, rows.map((f) => f[s.name]))])));
    for (let r = 0; r < 3; r++) {
      const alone = await model.engine.run(rows[r]);
      for (const o of outputs) {
        const [a, b] = [alone[o.name], together[o.name]];
        const sameShape = a.dims.length >= 1 && a.dims.length === b.dims.length && a.dims[0] === 1 && b.dims[0] === 3 && a.dims.every((d, i) => i === 0 || d === b.dims[i]);
        if (!sameShape || !sameValues(o.dtype, b.data.subarray(r * a.data.length, (r + 1) * a.data.length), a.data)) return false;
      }
    }
    return true;
  } catch {
    return false; // values the model refuses: not batched (one request per run is always right)
  }
}

/** One row per input, with values that differ from row to row and within it (small, valid for every dtype). */
function probeRow(inputs: readonly TensorSpec[], r: number): Record<string, EngineTensor> {
  const feeds: Record<string, EngineTensor> = {};
  for (const spec of inputs) {
    const dims = [1, ...spec.shape.slice(1)];
    const size = dims.reduce((a, b) => a * b, 1);
    const data = new TYPED_ARRAYS[spec.dtype](size);
    for (let i = 0; i < size; i++) {
      const k = (r * 7 + i * 3 + 1) % 11;
      if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(k % 5);
      else if (spec.dtype === 'bool') data[i] = k % 2;
      else if (spec.dtype === 'float16') data[i] = toHalf(k / 4 - 1);
      else if (data instanceof Float32Array || data instanceof Float64Array) data[i] = k / 4 - 1;
      else data[i] = k % 5;
    }
    feeds[spec.name] = { dtype: spec.dtype, data, dims };
  }
  return feeds;
}

function concatRows(spec: TensorSpec, parts: EngineTensor[]): EngineTensor {
  const n = parts[0].data.length;
  const data = new TYPED_ARRAYS[spec.dtype](n * parts.length);
  parts.forEach((p, i) => (data as Float32Array).set(p.data as Float32Array, i * n));
  return { dtype: spec.dtype, data, dims: [parts.length, ...parts[0].dims.slice(1)] };
}

/** Equal as the dtype compares: integers exactly, floats within a relative 1e-4 (kernels may sum a batch in another order). */
function sameValues(dtype: TensorSpec['dtype'], a: TypedArray, b: TypedArray): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a[i] as number | bigint;
    let y = b[i] as number | bigint;
    if (typeof x === 'bigint' || typeof y === 'bigint') {
      if (x !== y) return false;
      continue;
    }
    if (dtype === 'float16') [x, y] = [fromHalf(x), fromHalf(y)];
    if (dtype === 'float16' || dtype === 'float32' || dtype === 'float64') {
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (!(Math.abs(x - y) <= 1e-4 * Math.max(1, Math.abs(x), Math.abs(y)))) return false;
    } else if (x !== y) return false;
  }
  return true;
}

/** Feeds of the declared shapes (symbolic dimensions as 1) filled with `fill`; strings are empty. */
export function zeroFeeds(inputs: readonly TensorSpec[], fill = 0): Record<string, EngineTensor> {
  const feeds: Record<string, EngineTensor> = {};
  for (const spec of inputs) {
    const dims = spec.shape.map((d) => (d < 0 ? 1 : d));
    const size = dims.reduce((a, b) => a * b, 1);
    const data = spec.dtype === 'string' ? (new Array<string>(size).fill('') as unknown as TypedArray) : new TYPED_ARRAYS[spec.dtype](size);
    if (fill !== 0 && spec.dtype !== 'string') {
      if (data instanceof BigInt64Array || data instanceof BigUint64Array) data.fill(BigInt(fill));
      else (data as Float64Array).fill(spec.dtype === 'float16' ? 0x3c00 : fill); // 0x3c00: 1.0 in half precision
    }
    feeds[spec.name] = { dtype: spec.dtype, data, dims };
  }
  return feeds;
}
