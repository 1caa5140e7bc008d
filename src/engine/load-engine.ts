import type { Logger } from 'pino';
import { BUNDLE_FORMAT, parseManifest, type Manifest, type ModelSource, type TensorSpec } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { TYPED_ARRAYS, type Engine, type EngineOptions } from './engine.js';
import { tfjsArtifacts } from './tfjs-artifacts.js';

/** A model ready to serve: its manifest (derived for bare ONNX files) and a loaded engine. */
export interface LoadedModel {
  manifest: Manifest;
  engine: Engine;
}

/** A tensor no edge device can allocate: its fixed dimensions alone need more bytes than this. */
export const MAX_TENSOR_BYTES = 2 ** 31;

/**
 * Load a verified bundle or a bare .onnx file into the engine its runtime needs. Every failure
 * is EDGELOOP_MODEL_LOAD_FAILED (or the engine's own coded error): a model that cannot load
 * here will not load next time either, so the fleet marks it rejected instead of retrying.
 */
export async function loadModel(source: ModelSource, opts: EngineOptions, log?: Logger): Promise<LoadedModel> {
  let loaded: LoadedModel;
  try {
    loaded = await createEngine(source, opts, log);
  } catch (err) {
    throw asLoadError(err);
  }
  try {
    checkAllocations(loaded.manifest.name, [...loaded.engine.inputs, ...loaded.engine.outputs, ...loaded.manifest.inputs]);
  } catch (err) {
    await loaded.engine.dispose().catch(() => undefined);
    throw err;
  }
  return loaded;
}

/** A runtime's plain error (RangeError of an absurd allocation, a parse failure) as a load failure. */
function asLoadError(err: unknown): EdgeloopError {
  if (err instanceof EdgeloopError && err.code !== 'EDGELOOP_INTERNAL') return err;
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `cannot load the model (${message})`, { cause: err });
}

/** Declared shapes whose fixed dimensions need more memory than a device has are refused at load, not at the first request. */
function checkAllocations(model: string, specs: readonly TensorSpec[]): void {
  for (const spec of specs) {
    const fixed = spec.shape.reduce((n, d) => (d > 0 ? n * d : n), 1);
    const bytes = fixed * (spec.dtype === 'string' ? 8 : TYPED_ARRAYS[spec.dtype].BYTES_PER_ELEMENT);
    if (!Number.isSafeInteger(fixed) || bytes > MAX_TENSOR_BYTES) {
      throw new EdgeloopError(
        'EDGELOOP_MODEL_LOAD_FAILED',
        `${model}: '${spec.name}' is declared with shape [${spec.shape.join(', ')}] (${fixed} values, ${bytes} bytes), more than the ${MAX_TENSOR_BYTES} bytes a tensor may take`,
      );
    }
  }
}

async function createEngine(source: ModelSource, opts: EngineOptions, log?: Logger): Promise<LoadedModel> {
  // Engines are imported when first needed: onnxruntime and tfjs cost tens of MB and a CLI
  // command that never runs a model (status, rollback) should not pay for them.
  if (source.kind === 'bare-onnx') {
    const { OnnxEngine } = await import('./onnx-engine.js');
    const engine = await OnnxEngine.create(source.bytes, opts.onnx, log);
    return { manifest: manifestForBareOnnx(source.file, engine), engine };
  }
  const { manifest, files } = source.bundle;
  if (manifest.runtime === 'onnx') {
    const { OnnxEngine } = await import('./onnx-engine.js');
    const engine = await OnnxEngine.create(files.get(manifest.entry)!, opts.onnx, log);
    return { manifest, engine };
  }
  const { TfjsEngine } = await import('./tfjs-engine.js');
  const engine = await TfjsEngine.create(tfjsArtifacts(files, manifest.entry), opts.tfjs, manifest, log);
  return { manifest, engine };
}

/**
 * A bare model.onnx has no manifest: its signature comes from ONNX Runtime's session metadata
 * and it is served as raw tensors: nothing is guessed about what its outputs mean (no softmax,
 * no labels). OIP requests get every output as it is; row requests get the first output's raw
 * values (task 'embedding': the one task that leaves an output vector as it is).
 */
function manifestForBareOnnx(file: string, engine: Engine): Manifest {
  const base = file.split(/[\\/]/).pop()!.replace(/\.onnx$/, '');
  const name = base.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64) || 'model';
  return parseManifest(
    {
      format: BUNDLE_FORMAT,
      name,
      version: '0.0.0',
      runtime: 'onnx',
      task: 'embedding',
      entry: 'model.onnx',
      artifacts: [{ path: 'model.onnx', sha256: '0'.repeat(64), bytes: 0 }],
      inputs: engine.inputs,
      outputs: engine.outputs,
      preprocessing: {},
    },
    file,
  );
}
