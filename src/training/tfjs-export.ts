import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** How {@link saveTfjsArtifacts} stores float32 weights in weights.bin. */
export type TfjsQuantization = 'float32' | 'uint8' | 'float16';

/** Options of {@link saveTfjsArtifacts}. */
export interface SaveTfjsOptions {
  quantize: TfjsQuantization;
}

/** File names of a tfjs layers-model, as the bundle's artifacts. */
export const TFJS_MODEL_FILE = 'model.json';
/** The single weight shard every model.json written here points at. */
export const TFJS_WEIGHTS_FILE = 'weights.bin';

type WeightSpec = tf.io.WeightsManifestEntry;

/**
 * Serialise a tfjs LayersModel to the standard layers-model files, `model.json` and
 * `weights.bin`. Quantized weights carry tfjs's own manifest `quantization` fields, so any
 * tfjs loader (`tf.io.decodeWeights`) dequantizes them without help from us.
 */
export async function saveTfjsArtifacts(model: LayersModel, opts: SaveTfjsOptions): Promise<Map<string, Uint8Array>> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (!saved?.modelTopology || !saved.weightSpecs || saved.weightData === undefined) throw new Error('saveTfjsArtifacts: the model saved no topology or weights');
  const { specs, data } = encodeWeights(saved.weightSpecs, new Uint8Array(tf.io.CompositeArrayBuffer.join(saved.weightData)), opts.quantize);
  const modelJson = {
    format: 'layers-model',
    generatedBy: saved.generatedBy ?? 'TensorFlow.js tfjs-layers',
    convertedBy: 'edgeloop',
    modelTopology: saved.modelTopology,
    ...(saved.trainingConfig ? { trainingConfig: saved.trainingConfig } : {}),
    weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights: specs }],
  };
  return new Map([
    [TFJS_MODEL_FILE, new TextEncoder().encode(JSON.stringify(modelJson))],
    [TFJS_WEIGHTS_FILE, data],
  ]);
}

/** Re-encode the weight bytes: float32 weights quantized as asked, other dtypes copied as-is. */
function encodeWeights(specs: WeightSpec[], bytes: Uint8Array, quantize: TfjsQuantization): { specs: WeightSpec[]; data: Uint8Array } {
  if (quantize === 'float32') return { specs, data: bytes };
  const outSpecs: WeightSpec[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization) throw new Error(`weight ${spec.name} is already quantized`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const byteLength = size * 4;
    const raw = bytes.slice(offset, offset + byteLength);
    offset += byteLength;
    if (spec.dtype !== 'float32') {
      if (spec.dtype !== 'int32') throw new Error(`weight ${spec.name}: dtype ${spec.dtype} is not supported`);
      outSpecs.push(spec);
      parts.push(raw);
      continue;
    }
    const values = new Float32Array(raw.buffer, 0, size);
    if (quantize === 'float16') {
      outSpecs.push({ ...spec, quantization: { dtype: 'float16' } });
      parts.push(toFloat16Bytes(values));
    } else {
      const q = quantizeUint8(values);
      outSpecs.push({ ...spec, quantization: { dtype: 'uint8', scale: q.scale, min: q.min } });
      parts.push(q.data);
    }
  }
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { specs: outSpecs, data };
}

/**
 * Affine uint8 quantization, value = q * scale + min, with min nudged so 0 is exactly
 * representable (as the tfjs converter does): zero biases and ReLU-sparse weights stay zero.
 */
export function quantizeUint8(values: Float32Array): { data: Uint8Array; scale: number; min: number } {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.round(-lo / scale);
  const min = -zeroPoint * scale;
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.max(0, Math.min(255, Math.round((values[i] - min) / scale)));
  return { data, scale, min };
}

/** IEEE half-precision bits, little-endian, rounding to nearest even (as a hardware cast does). */
export function toFloat16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, float32ToFloat16Bits(values[i]), true);
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, rounding to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}
