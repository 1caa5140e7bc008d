import type { ServedModel } from '../engine/index.js';
import { DTYPE_TO_OIP } from './datatypes.js';

/** GET /v2 (OIP server metadata). */
export function serverMetadata(version: string): Record<string, unknown> {
  return { name: 'edgeloop', version, extensions: ['binary_tensor_data'] };
}

/** GET /v2/models/{name}[/versions/{v}] (OIP model metadata); -1 marks a dynamic dimension. */
export function modelMetadata(m: ServedModel): Record<string, unknown> {
  const spec = (s: { name: string; dtype: keyof typeof DTYPE_TO_OIP; shape: readonly number[] }) => ({ name: s.name, datatype: DTYPE_TO_OIP[s.dtype], shape: s.shape });
  return {
    name: m.name,
    versions: [m.version],
    platform: m.engine.runtime === 'onnx' ? 'onnxruntime_onnx' : 'tensorflow_js',
    task: m.manifest.task,
    inputs: m.engine.inputs.map(spec),
    outputs: m.engine.outputs.map(spec),
    // OIP's free-form parameters: whether tensor requests share engine calls (micro-batched).
    parameters: { batchable: m.batchable },
  };
}
