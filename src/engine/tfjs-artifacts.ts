import type * as tf from '@tensorflow/tfjs-core';
import { EdgeloopError } from '../errors.js';

interface WeightsGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** Turn verified bundle files (model.json + weight shards) into tfjs model artifacts. */
export function tfjsArtifacts(files: ReadonlyMap<string, Uint8Array>, entry: string): tf.io.ModelArtifacts {
  const modelJson = files.get(entry);
  if (!modelJson) throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `tfjs: ${entry} is missing from the bundle`);
  let parsed: { modelTopology?: object; weightsManifest?: WeightsGroup[] };
  try {
    parsed = JSON.parse(Buffer.from(modelJson).toString('utf8'));
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `tfjs: ${entry} is not JSON (${(err as Error).message})`);
  }
  if (!parsed.modelTopology) throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `tfjs: ${entry} has no modelTopology (only LayersModel bundles are served)`);
  const dir = entry.includes('/') ? entry.slice(0, entry.lastIndexOf('/') + 1) : '';
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: Uint8Array[] = [];
  for (const group of parsed.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const shard = files.get(dir + p);
      if (!shard) throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `tfjs: weight file ${dir + p} is missing from the bundle`);
      shards.push(shard);
    }
  }
  const weightData = Buffer.concat(shards);
  return {
    modelTopology: parsed.modelTopology,
    weightSpecs: specs,
    weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
  };
}
