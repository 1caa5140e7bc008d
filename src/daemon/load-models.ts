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
 * (a model with a fixed batch of 3 gets 3 rows), a scalar stays a scalar.
 */
async function warmUp(model: ServedModel, log?: Logger): Promise<void> {
  try {
    await model.engine.run(zeroFeeds(model.engine.inputs));
  } catch (zeros) {
    // Zeros are values some models refuse (a modulus, a shape or a count as an input): the
    // session loaded, so try ones, and serve anyway if those fail too (requests will tell).
    try {
      await model.engine.run(zeroFeeds(model.engine.inputs, 1));
    } catch {
      log?.warn({ model: model.name, version: model.version, err: (zeros as Error).message.split('\n')[0] }, 'warm-up run refused zero and one inputs; serving without a warm-up');
    }
  }
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
