import type { OnnxGraphBuilder } from './onnx-writer.js';
import { quantizePerChannel, type WeightType } from './quantize.js';

/** One Dense layer to export as MatMulInteger (Conv2D: see quantized-conv.ts). */
export interface QuantizedLinearLayer {
  name: string;
  /** Float weights [K, N] (tfjs Dense kernel layout). */
  weights: Float32Array;
  dims: readonly [number, number];
  bias?: Float32Array;
  weightType: WeightType;
}

/** Smallest activation scale: an all-zero row quantizes to zeros instead of dividing 0 by 0. */
const MIN_SCALE = 1e-12;
/** Zero point of signed activations: symmetric ±127 steps stored as uint8 around 128. */
const SIGNED_ZERO_POINT = 128;

/** A float tensor quantized per row (per sample) to uint8, see {@link quantizeRows}. */
export interface RowQuantized {
  /** uint8 tensor, same shape as the input. */
  xq: string;
  /** float [B]: one scale per row. */
  scale: string;
  /** Scalar uint8 zero point initializer (128), or '' when it is 0 (non-negative input). */
  zeroPoint: string;
}

/**
 * Quantize `x` (rank `rank`, batch on axis 0) to uint8 with one scale per row, computed in the
 * graph from that row alone, so a row's result never depends on which rows share its batch:
 * - `nonNegative` input (>= 0 after relu, softmax, ..., or a relu left to this quantization):
 *   s_b = max / 255, zero point 0, so the row uses all 256 uint8 levels, and QuantizeLinear
 *   saturates any negative value to 0, exactly as a relu before it would;
 * - otherwise: symmetric, s_b = max|x| / 127, stored as uint8 with the constant zero point 128.
 * Either way the zero point is one scalar for the whole batch, which is all onnxruntime's CPU
 * MatMulInteger accepts (a per-row a_zero_point is rejected: "input1 zero point must be a
 * scalar or 1D tensor of size 1"), so no zero-point correction term is needed, and a cell
 * padded with the zero point dequantizes to exactly 0.0. uint8 activations matter:
 * onnxruntime has no fast kernel for int8 activations, which run 5-10x slower here.
 *
 *   xq = QuantizeLinear(x, s, zp, axis=0)          s: [B], per-row scales
 */
export function quantizeRows(g: OnnxGraphBuilder, x: string, name: string, rank: number, nonNegative: boolean): RowQuantized {
  const op = (type: string, inputs: string[], attrs = {}): string => g.addNode(type, inputs, 1, attrs)[0];
  const constant = (what: string, v: number): string => g.addFloats(`${name}/${what}`, [v], []);
  // Reduce each row (sample) to one value: [B].
  const axes = Array.from({ length: rank - 1 }, (_, i) => i + 1);
  const perRowMax = (t: string): string => op('ReduceMax', [t], { axes, keepdims: 0 });
  const guarded = (range: string, steps: number): string => op('Max', [op('Div', [range, constant('steps', steps)]), constant('min_scale', MIN_SCALE)]);
  if (nonNegative) {
    const scale = guarded(perRowMax(x), 255);
    return { xq: op('QuantizeLinear', [x, scale], { axis: 0 }), scale, zeroPoint: '' }; // no zero point: uint8, 0
  }
  const scale = guarded(perRowMax(op('Abs', [x])), 127);
  const zeroPoint = g.addInitializer(`${name}/x_zero_point`, 'uint8', [], [SIGNED_ZERO_POINT]);
  // Per-axis QuantizeLinear wants one zero point per row: broadcast the constant to [B].
  const xq = op('QuantizeLinear', [x, scale, op('Expand', [zeroPoint, op('Shape', [scale])])], { axis: 0 });
  return { xq, scale, zeroPoint };
}

/**
 * int32 accumulators [B, ..., channels] of an integer product of per-row activations and
 * per-channel weights back to float: DequantizeLinear(acc, s, axis=0) * w_scale + bias, with
 * w_scale and bias repeated `repeat` times, shaped [repeat, channels] for acc [B, repeat,
 * channels] or [repeat * channels] for acc [B, repeat * channels] (`flat`).
 *
 * DequantizeLinear (int32 to float, times the row scale) is deliberately used instead of
 * Cast -> Mul(s * w_scale): onnxruntime rewrites that Cast/Mul pattern after MatMulInteger
 * into com.microsoft.MatMulIntegerToFloat, which mis-scales a [B, 1] row scale.
 */
export function dequantizeRows(g: OnnxGraphBuilder, acc: string, scale: string, name: string, wScales: Float32Array, bias: Float32Array | undefined, repeat = 1, flat = false): string {
  const op = (type: string, inputs: string[], attrs = {}): string => g.addNode(type, inputs, 1, attrs)[0];
  // Per-channel constants repeated over the positions: onnxruntime broadcasts a long span
  // (positions * channels) much faster than many short ones.
  const dims = (n: number): number[] => (flat ? [repeat * n] : repeat > 1 ? [repeat, n] : [n]);
  const tiled = (what: string, v: Float32Array): string => g.addFloats(`${name}/${what}`, tile(v, repeat), dims(v.length));
  const y = op('Mul', [op('DequantizeLinear', [acc, scale], { axis: 0 }), tiled('kernel_scale', wScales)]);
  return bias ? op('Add', [y, tiled('bias', bias)]) : y;
}

function tile(v: Float32Array, times: number): Float32Array {
  const out = new Float32Array(v.length * times);
  for (let i = 0; i < times; i++) out.set(v, i * v.length);
  return out;
}

/**
 * Dynamic int8 quantization of one Dense layer, with activations quantized PER ROW (see
 * {@link quantizeRows}) and weights quantized ahead of time with one symmetric scale per
 * output unit (see quantizePerChannel):
 *
 *   xq  = QuantizeLinear(x, s, zp, axis=0)
 *   acc = MatMulInteger(xq, Wq, zp_x, zp_w)              int32, exact
 *   y   = DequantizeLinear(acc, s, axis=0) * w_scale + bias
 *
 * All of it is either exact integer arithmetic or elementwise within a row, so results are
 * bit-identical whatever the batch.
 */
export function quantizedLinear(g: OnnxGraphBuilder, x: string, l: QuantizedLinearLayer, nonNegative: boolean): string {
  const [nIn, nOut] = l.dims;
  if (nIn * nOut !== l.weights.length) throw new Error(`quantizedLinear: '${l.name}' has ${l.weights.length} weights for [${nIn}, ${nOut}]`);
  const q = quantizePerChannel(l.weights, nOut, (i) => i % nOut, l.weightType);
  const W = g.addInitializer(`${l.name}/kernel_quantized`, l.weightType, l.dims, q.values);
  const wZero = g.addInitializer(`${l.name}/kernel_zero_point`, l.weightType, [], [q.zeroPoint]);
  const { xq, scale, zeroPoint } = quantizeRows(g, x, l.name, 2, nonNegative);
  const [acc] = g.addNode('MatMulInteger', [xq, W, zeroPoint, wZero], 1);
  return dequantizeRows(g, acc, scale, l.name, q.scales, l.bias);
}
