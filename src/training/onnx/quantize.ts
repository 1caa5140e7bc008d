/** Storage type of quantized ONNX weights. */
export type WeightType = 'uint8' | 'int8';

/** Weights quantized symmetrically with one scale per output channel. */
export interface QuantizedWeights {
  /** Quantized values in the same order as the input (stored as int8 or uint8). */
  values: Int8Array | Uint8Array;
  /** One scale per output channel: w ≈ (q - zeroPoint) * scale. */
  scales: Float32Array;
  /** 0 for int8, 128 for uint8: symmetric either way, so it is one scalar for all channels. */
  zeroPoint: number;
}

/**
 * Symmetric per-channel quantization. Per-channel scales keep small-magnitude output units
 * from being rounded to zero by a large unit elsewhere in the same tensor; the scale is applied
 * after the integer matmul/conv, so the runtime only needs a scalar zero point.
 *
 * int8 weights use ±63 ("reduce range"): x86 CPUs without VNNI multiply uint8 activations by
 * int8 weights with VPMADDUBSW, which adds two products into int16 and saturates at full
 * 8-bit range (255·127·2 > 32767); 7-bit weights cannot overflow it. uint8 weights (zero
 * point 128) keep ±127 but run on a slower uint8×uint8 kernel.
 */
export function quantizePerChannel(weights: Float32Array, channels: number, channelOf: (i: number) => number, type: WeightType): QuantizedWeights {
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < weights.length; i++) {
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c], Math.abs(weights[i]));
  }
  const scales = new Float32Array(channels);
  // An all-zero channel gets scale 1 so dequantization never divides by zero.
  const levels = type === 'int8' ? 63 : 127;
  for (let c = 0; c < channels; c++) scales[c] = maxAbs[c] > 0 ? maxAbs[c] / levels : 1;
  const zeroPoint = type === 'uint8' ? 128 : 0;
  const values = type === 'uint8' ? new Uint8Array(weights.length) : new Int8Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const q = Math.max(-levels, Math.min(levels, Math.round(weights[i] / scales[channelOf(i)])));
    values[i] = q + zeroPoint;
  }
  return { values, scales, zeroPoint };
}
