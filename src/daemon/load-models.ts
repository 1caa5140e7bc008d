import type { Logger } from 'pino';
import { openModelSource, type TensorSpec } from '../bundle/index.js';
import { loadModel, ServedModel, TYPED_ARRAYS, type BatcherOptions, type EngineOptions, type EngineTensor, type TypedArray } from '../engine/index.js';

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
 * (a model with a fixed batch of 3 gets 3 rows), a scalar stays a scalar. Then, for a model
 * whose signature looks like rows, a 3-row run tells whether its outputs really follow the
 * rows: only then do tensor requests share engine calls (the micro-batcher) with others.
 */
async function warmUp(model: ServedModel, log?: Logger): Promise<void> {
  let fill = 0;
  let first: Record<string, EngineTensor>;
  try {
    first = await model.engine.run(zeroFeeds(model.engine.inputs));
  } catch (zeros) {
    // Zeros are values some models refuse (a modulus, a shape or a count as an input): the
    // session loaded, so try ones, and serve anyway if those fail too (requests will tell).
    try {
      fill = 1;
      first = await model.engine.run(zeroFeeds(model.engine.inputs, 1));
    } catch {
      log?.warn({ model: model.name, version: model.version, err: (zeros as Error).message.split('\n')[0] }, 'warm-up run refused zero and one inputs; serving without a warm-up');
      return;
    }
  }
  model.batchable = await followsRows(model, first, fill);
}

/** Declared as rows (first dimension dynamic, the rest fixed, no strings) and seen to answer 1 and 3 rows with 1 and 3 output rows of the same shape. */
async function followsRows(model: ServedModel, one: Record<string, EngineTensor>, fill: number): Promise<boolean> {
  const { inputs, outputs } = model.engine;
  const rowLike = (s: TensorSpec) => s.dtype !== 'string' && s.shape.length >= 1 && s.shape[0] < 0 && s.shape.slice(1).every((d) => d > 0);
  if (inputs.length === 0 || !inputs.every(rowLike) || outputs.some((o) => o.dtype === 'string')) return false;
  let three: Record<string, EngineTensor>;
  try {
    three = await model.engine.run(zeroFeeds(inputs, fill, 3));
  } catch {
    return false;
  }
  return outputs.every((o) => {
    const a = one[o.name]?.dims;
    const b = three[o.name]?.dims;
    return a !== undefined && b !== undefined && a.length >= 1 && a.length === b.length && a[0] === 1 && b[0] === 3 && a.every((d, i) => i === 0 || d === b[i]);
  });
}

/** Feeds of the declared shapes (symbolic dimensions as 1, a dynamic first one as `rows`) filled with `fill`; strings are empty. */
export function zeroFeeds(inputs: readonly TensorSpec[], fill = 0, rows = 1): Record<string, EngineTensor> {
  const feeds: Record<string, EngineTensor> = {};
  for (const spec of inputs) {
    const dims = spec.shape.map((d, i) => (d < 0 ? (i === 0 ? rows : 1) : d));
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
