import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { openModelSource } from '../bundle/index.js';
import { asEdgeloopError } from '../errors.js';
import { loadModel, ServedModel, TYPED_ARRAYS, type BatcherOptions, type EngineOptions, type EngineTensor } from '../engine/index.js';

/**
 * Load every bundle folder and bare .onnx file in `dir`, verified and warmed up. A model that
 * fails to load is logged and skipped: the others are still served.
 */
export async function loadModelsDir(dir: string, engineOpts: EngineOptions, batcherOpts: BatcherOptions, log: Logger): Promise<Map<string, ServedModel>> {
  const models = new Map<string, ServedModel>();
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).sort();
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'models folder cannot be read; serving no models');
    return models;
  }
  for (const entry of entries) {
    const p = path.join(dir, entry);
    const stat = await fs.stat(p).catch(() => undefined);
    if (!stat) continue;
    const isBundle = stat.isDirectory() && (await fs.stat(path.join(p, 'bundle.json')).catch(() => undefined));
    if (!isBundle && !(stat.isFile() && entry.endsWith('.onnx'))) continue;
    try {
      const model = await loadServedModel(p, engineOpts, batcherOpts, log);
      if (models.has(model.name)) {
        log.error({ path: p, model: model.name }, 'a model of this name is already loaded; skipped');
        await model.dispose();
        continue;
      }
      models.set(model.name, model);
      log.info({ model: model.name, version: model.version, runtime: model.engine.runtime, backend: model.engine.backend, quantization: model.manifest.quantization }, 'model loaded');
    } catch (err) {
      const e = asEdgeloopError(err);
      log.error({ path: p, code: e.code, err: e.message }, 'model not loaded');
    }
  }
  return models;
}

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
