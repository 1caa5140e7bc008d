import type { Logger } from 'pino';
import { BUNDLE_FORMAT, parseManifest, type Manifest, type ModelSource } from '../bundle/index.js';
import type { Engine, EngineOptions } from './engine.js';
import { tfjsArtifacts } from './tfjs-artifacts.js';

/** A model ready to serve: its manifest (derived for bare ONNX files) and a loaded engine. */
export interface LoadedModel {
  manifest: Manifest;
  engine: Engine;
}

/** Load a verified bundle or a bare .onnx file into the engine its runtime needs. */
export async function loadModel(source: ModelSource, opts: EngineOptions, log?: Logger): Promise<LoadedModel> {
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
 * A bare model.onnx has no manifest: its signature comes from ONNX Runtime's session
 * metadata; one output with more than one value per row is taken as a classifier (its
 * outputs are softmaxed when they are not already probabilities), one value as regression.
 */
function manifestForBareOnnx(file: string, engine: Engine): Manifest {
  const base = file.split(/[\\/]/).pop()!.replace(/\.onnx$/, '');
  const name = base.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '') || 'model';
  const width = engine.outputs[0].shape.at(-1) ?? -1;
  return parseManifest(
    {
      format: BUNDLE_FORMAT,
      name,
      version: '0.0.0',
      runtime: 'onnx',
      task: width === 1 ? 'regression' : 'classification',
      entry: 'model.onnx',
      artifacts: [{ path: 'model.onnx', sha256: '0'.repeat(64), bytes: 0 }],
      inputs: engine.inputs,
      outputs: engine.outputs,
      outputKind: 'auto',
      preprocessing: {},
    },
    file,
  );
}
