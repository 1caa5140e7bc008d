import type * as tfl from '@tensorflow/tfjs-layers';
import type { Manifest, TensorSpec } from '../../bundle/index.js';
import { EdgeloopError } from '../../errors.js';
import { exportToOnnx } from '../onnx/export-onnx.js';
import { saveTfjsArtifacts, TFJS_MODEL_FILE } from '../tfjs-export.js';

/** The formats a trained model is exported to. */
export const VARIANTS = ['tfjs', 'tfjs-float16', 'tfjs-uint8', 'onnx-fp32', 'onnx-int8'] as const;
export type Variant = (typeof VARIANTS)[number];

/** One exported model: its files and the manifest fields that describe them. */
export interface VariantArtifacts {
  variant: Variant;
  runtime: Manifest['runtime'];
  quantization: Manifest['quantization'];
  entry: string;
  files: Map<string, Uint8Array>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export const ONNX_MODEL_FILE = 'model.onnx';

export function parseVariant(v: string): Variant {
  if ((VARIANTS as readonly string[]).includes(v)) return v as Variant;
  throw new EdgeloopError('EDGELOOP_USAGE', `unknown export variant '${v}'; use ${VARIANTS.join(', ')}`);
}

/** Output name of the first output: 'probabilities' for classifiers, 'value' for regressors. */
export function outputName(task: Manifest['task']): string {
  return task === 'classification' ? 'probabilities' : 'value';
}

/**
 * Width of the `embedding` output an ONNX classifier gets: the penultimate Dense layer's
 * units, or undefined when the model has fewer than two Dense layers.
 */
function embeddingWidth(model: tfl.LayersModel): number | undefined {
  const dense = model.layers.filter((l) => l.getClassName() === 'Dense');
  return dense.length >= 2 ? ((dense[dense.length - 2].getConfig() as { units: number }).units) : undefined;
}

/**
 * Export a trained tfjs model as one variant: tfjs LayersModel files (float32, or weights
 * quantized to float16 / uint8 with tfjs's own manifest fields) or ONNX (float32, or int8
 * dynamic quantization) written by our ONNX writer. ONNX classifiers also get an `embedding`
 * output (the penultimate Dense layer) for head fine-tuning.
 */
export async function exportVariant(model: tfl.LayersModel, variant: Variant, task: Manifest['task']): Promise<VariantArtifacts> {
  const inShape = model.inputs[0].shape.slice(1) as number[];
  const outShape = model.outputs[0].shape.slice(1) as number[];
  const inputs: TensorSpec[] = [{ name: 'input', dtype: 'float32', shape: [-1, ...inShape] }];
  const first: TensorSpec = { name: outputName(task), dtype: 'float32', shape: [-1, ...outShape] };
  if (variant.startsWith('tfjs')) {
    const quantize = variant === 'tfjs' ? 'float32' : variant === 'tfjs-float16' ? 'float16' : 'uint8';
    const files = await saveTfjsArtifacts(model, { quantize });
    return { variant, runtime: 'tfjs', quantization: quantize, entry: TFJS_MODEL_FILE, files, inputs, outputs: [first] };
  }
  const int8 = variant === 'onnx-int8';
  const embedding = task === 'classification' ? embeddingWidth(model) : undefined;
  let bytes: Uint8Array;
  try {
    bytes = exportToOnnx(model, { quantize: int8 ? 'int8' : 'float32', inputName: 'input', outputName: first.name, embeddingOutput: embedding !== undefined });
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_EXPORT_FAILED', `${variant}: ${(err as Error).message}`, { cause: err });
  }
  const outputs = embedding !== undefined ? [first, { name: 'embedding', dtype: 'float32' as const, shape: [-1, embedding] }] : [first];
  return { variant, runtime: 'onnx', quantization: int8 ? 'int8' : 'float32', entry: ONNX_MODEL_FILE, files: new Map([[ONNX_MODEL_FILE, bytes]]), inputs, outputs };
}
