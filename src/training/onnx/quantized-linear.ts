import type { OnnxGraphBuilder } from './onnx-writer.js';
import { quantizePerChannel, type WeightType } from './quantize.js';

/** One Dense (MatMulInteger) or Conv2D (ConvInteger) layer to export with int8 arithmetic. */
export interface QuantizedLinearLayer {
  op: 'MatMulInteger' | 'ConvInteger';
  name: string;
  /** Float weights in ONNX layout: [K, N] for MatMulInteger, [cout, cin, kh, kw] for ConvInteger. */
  weights: Float32Array;
  dims: readonly number[];
  channels: number;
  /** Output channel of weight `i`. */
  channelOf: (i: number) => number;
  /** Shape that broadcasts one value per output channel against the output: [N] or [cout, 1, 1]. */
  channelShape: readonly number[];
  bias?: Float32Array;
  weightType: WeightType;
  /** ConvInteger attributes (kernel_shape, strides, dilations, pads); empty for MatMulInteger. */
  attrs: Readonly<Record<string, number[]>>;
}

/** Smallest activation scale: an all-zero row quantizes to zeros instead of dividing 0 by 0. */
const MIN_SCALE = 1e-12;
/** Zero point of signed activations: symmetric ±127 steps stored as uint8 around 128. */
const SIGNED_ZERO_POINT = 128;

/**
 * Dynamic int8 quantization of one Dense or Conv2D layer, with activations quantized PER ROW
 * (per sample), so a row's result never depends on which rows share its batch. Weights are
 * quantized ahead of time with one symmetric scale per output channel (see quantizePerChannel).
 *
 * Each row b gets its own scale s_b from its own range, computed in the graph:
 * - input known to be >= 0 (after relu, softmax, ...): s_b = max / 255, zero point 0, so the
 *   row uses all 256 uint8 levels;
 * - otherwise: symmetric, s_b = max|x| / 127, stored as uint8 with the constant zero point 128.
 * Either way the activation zero point is one scalar for the whole batch, which is all
 * onnxruntime's CPU MatMulInteger / ConvInteger accept (a per-row a_zero_point is rejected:
 * "input1 zero point must be a scalar or 1D tensor of size 1"), so no zero-point correction
 * term is needed, and ConvInteger's padding (filled with the zero point) is exactly 0.0.
 * uint8 activations matter: onnxruntime has no fast kernel for int8 activations, which run
 * 5-10x slower here. Then:
 *
 *   xq  = QuantizeLinear(x, s, zp, axis=0)          s: [B], per-row scales
 *   acc = MatMulInteger | ConvInteger(xq, Wq, zp_x, zp_w)               int32, exact
 *   y   = DequantizeLinear(acc, s, axis=0) * w_scale + bias
 *
 * All of it is either exact integer arithmetic or elementwise within a row, so results are
 * bit-identical whatever the batch. DequantizeLinear (int32 to float, times the row scale) is
 * deliberately used instead of Cast -> Mul(s * w_scale): onnxruntime rewrites that Cast/Mul
 * pattern into com.microsoft.MatMulIntegerToFloat, which mis-scales a [B, 1] row scale.
 */
export function quantizedLinear(g: OnnxGraphBuilder, x: string, l: QuantizedLinearLayer, nonNegative: boolean): string {
  const q = quantizePerChannel(l.weights, l.channels, l.channelOf, l.weightType);
  const W = g.addInitializer(`${l.name}/kernel_quantized`, l.weightType, l.dims, q.values);
  const wZero = g.addInitializer(`${l.name}/kernel_zero_point`, l.weightType, [], [q.zeroPoint]);
  const op = (type: string, inputs: string[], attrs = {}): string => g.addNode(type, inputs, 1, attrs)[0];
  const constant = (name: string, v: number): string => g.addFloats(`${l.name}/${name}`, [v], []);
  // Reduce each row (sample) to one value: [B].
  const perRowMax = (t: string): string => op('ReduceMax', [t], { axes: l.op === 'ConvInteger' ? [1, 2, 3] : [1], keepdims: 0 });
  const guarded = (range: string, steps: number): string => op('Max', [op('Div', [range, constant('steps', steps)]), constant('min_scale', MIN_SCALE)]);

  let scale: string;
  let xq: string;
  let xZero: string;
  if (nonNegative) {
    scale = guarded(perRowMax(x), 255);
    xq = op('QuantizeLinear', [x, scale], { axis: 0 }); // no zero point: uint8, 0
    xZero = '';
  } else {
    scale = guarded(perRowMax(op('Abs', [x])), 127);
    xZero = g.addInitializer(`${l.name}/x_zero_point`, 'uint8', [], [SIGNED_ZERO_POINT]);
    // Per-axis QuantizeLinear wants one zero point per row: broadcast the constant to [B].
    xq = op('QuantizeLinear', [x, scale, op('Expand', [xZero, op('Shape', [scale])])], { axis: 0 });
  }
  const acc = op(l.op, [xq, W, xZero, wZero], l.attrs);
  const y = op('Mul', [op('DequantizeLinear', [acc, scale], { axis: 0 }), g.addFloats(`${l.name}/kernel_scale`, q.scales, l.channelShape)]);
  return l.bias ? op('Add', [y, g.addFloats(`${l.name}/bias`, l.bias, l.channelShape)]) : y;
}
