import type * as tfl from '@tensorflow/tfjs-layers';
import type { Manifest, TensorSpec } from '../../bundle/index.js';
import { EdgeloopError } from '../../errors.js';
import { describeCalibration, type CalibrationData, type CalibrationMethod } from '../onnx/calibrate.js';
import { DEFAULT_CALIBRATION, exportToOnnx } from '../onnx/export-onnx.js';
import { saveTfjsArtifacts, TFJS_MODEL_FILE } from '../tfjs-export.js';

import { VARIANTS, type Variant } from './variant-names.js';
export { VARIANTS, type Variant };

/** One exported model: its files and the manifest fields that describe them. */
export interface VariantArtifacts {
  variant: Variant;
  runtime: Manifest['runtime'];
  quantization: Manifest['quantization'];
  entry: string;
  files: Map<string, Uint8Array>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** How an int8 ONNX export was quantized (recorded in the bundle's training record). */
  quantizationDetails?: Record<string, unknown>;
}

/** What some variants need besides the model. */
export interface ExportVariantOptions {
  /**
   * 'onnx-int8-static': the rows its activation ranges are calibrated on, standardised as
   * the model sees them (the training split), and where they come from.
   */
  calibration?: CalibrationData & { source: string };
  /** 'onnx-int8-static': how ranges are taken from the calibration rows (default: DEFAULT_CALIBRATION). */
  calibrationMethod?: CalibrationMethod;
}

export const ONNX_MODEL_FILE = 'model.onnx';
/** Where an ONNX bundle keeps its trainable float32 tfjs source (manifest `trainable.entry`). */
export const TRAINABLE_SOURCE_DIR = 'source';

/**
 * Add the float32 tfjs files of `model` under `source/` to an ONNX variant's files (hashed
 * like every artifact) and return the manifest's `trainable` field: fine-tuning on the device
 * starts from this model, since ONNX Runtime cannot train.
 */
export async function withTrainableSource(model: tfl.LayersModel, files: Map<string, Uint8Array>): Promise<{ entry: string; runtime: 'tfjs' }> {
  for (const [name, data] of await saveTfjsArtifacts(model, { quantize: 'float32' })) files.set(`${TRAINABLE_SOURCE_DIR}/${name}`, data);
  return { entry: `${TRAINABLE_SOURCE_DIR}/${TFJS_MODEL_FILE}`, runtime: 'tfjs' };
}

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
 * quantized to float16 / uint8 with tfjs's own manifest fields) or ONNX (float32, int8 with
 * dynamic per-row activation quantization, or int8 static quantization calibrated on
 * `opts.calibration`) written by our ONNX writer. ONNX classifiers also get an `embedding`
 * output (the penultimate Dense layer) for head fine-tuning.
 */
export async function exportVariant(model: tfl.LayersModel, variant: Variant, task: Manifest['task'], opts: ExportVariantOptions = {}): Promise<VariantArtifacts> {
  const inShape = model.inputs[0].shape.slice(1) as number[];
  const outShape = model.outputs[0].shape.slice(1) as number[];
  const inputs: TensorSpec[] = [{ name: 'input', dtype: 'float32', shape: [-1, ...inShape] }];
  const first: TensorSpec = { name: outputName(task), dtype: 'float32', shape: [-1, ...outShape] };
  if (variant.startsWith('tfjs')) {
    const quantize = variant === 'tfjs' ? 'float32' : variant === 'tfjs-float16' ? 'float16' : 'uint8';
    const files = await saveTfjsArtifacts(model, { quantize });
    return { variant, runtime: 'tfjs', quantization: quantize, entry: TFJS_MODEL_FILE, files, inputs, outputs: [first] };
  }
  const quantize = variant === 'onnx-int8' ? 'int8' : variant === 'onnx-int8-static' ? 'int8-static' : 'float32';
  const int8 = quantize !== 'float32';
  const embedding = task === 'classification' ? embeddingWidth(model) : undefined;
  let quantizationDetails: Record<string, unknown> | undefined;
  if (quantize === 'int8') quantizationDetails = { mode: 'dynamic', activations: 'uint8, one scale per row computed at run time', weights: 'int8 per output channel, 7-bit symmetric' };
  if (quantize === 'int8-static') {
    if (!opts.calibration) throw new EdgeloopError('EDGELOOP_USAGE', `${variant} needs calibration rows (the training split)`);
    quantizationDetails = {
      mode: 'static',
      activations: 'uint8, fixed scale and zero point per tensor',
      weights: 'int8 per output channel, 7-bit symmetric',
      calibration: { method: describeCalibration(opts.calibrationMethod ?? DEFAULT_CALIBRATION), rows: opts.calibration.count, data: opts.calibration.source },
    };
  }
  let bytes: Uint8Array;
  try {
    const calibration = quantize === 'int8-static' ? { rows: opts.calibration!.rows, count: opts.calibration!.count } : undefined;
    bytes = exportToOnnx(model, { quantize, calibration, calibrationMethod: opts.calibrationMethod ?? DEFAULT_CALIBRATION, inputName: 'input', outputName: first.name, embeddingOutput: embedding !== undefined });
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_EXPORT_FAILED', `${variant}: ${(err as Error).message}`, { cause: err });
  }
  const outputs = embedding !== undefined ? [first, { name: 'embedding', dtype: 'float32' as const, shape: [-1, embedding] }] : [first];
  return { variant, runtime: 'onnx', quantization: int8 ? 'int8' : 'float32', entry: ONNX_MODEL_FILE, files: new Map([[ONNX_MODEL_FILE, bytes]]), inputs, outputs, ...(quantizationDetails ? { quantizationDetails } : {}) };
}
