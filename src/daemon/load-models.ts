import type { Logger } from 'pino';
import { openModelSource } from '../bundle/index.js';
import { loadModel, ServedModel, TYPED_ARRAYS, type BatcherOptions, type EngineOptions, type EngineTensor } from '../engine/index.js';

/** Open, verify, load and warm up one model. */
export async function loadServedModel(p: string, engineOpts: EngineOptions, batcherOpts: BatcherOptions, log?: Logger): Promise<ServedModel> {
  const source = await openModelSource(p);
  const { manifest, engine } = await loadModel(source, engineOpts, log);
  try {
    const model = new ServedModel(manifest, engine, batcherOpts);
    await warmUp(model);
    return model;
  } catch (err) {
    await engine.dispose();
    throw err;
  }
}

/** One zero batch through the engine so the first real request does not pay for lazy init. */
async function warmUp(model: ServedModel): Promise<void> {
  const feeds: Record<string, EngineTensor> = {};
  for (const [i, spec] of model.engine.inputs.entries()) {
    const size = model.inputs[i].rowSize;
    feeds[spec.name] = { dtype: spec.dtype, data: new TYPED_ARRAYS[spec.dtype](size), dims: [1, ...spec.shape.slice(1)] };
  }
  await model.engine.run(feeds);
}
