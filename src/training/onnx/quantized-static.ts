import type { TensorRange } from './calibrate.js';
import { MS_DOMAIN, type OnnxGraphBuilder } from './onnx-writer.js';
import { quantizePerChannel, type WeightType } from './quantize.js';
import { denseConvMatrix, im2colIndices, type ConvGeometry, type ConvInput } from './quantized-conv.js';

/** Fixed (calibrated) uint8 quantization of a tensor: x ≈ (q - zeroPoint) * scale. */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/** A uint8 tensor of the graph and its quantization (scale and zero point initializers). */
export interface QTensor {
  name: string;
  params: QuantParams;
  scale: string;
  zeroPoint: string;
}

/**
 * uint8 quantization of a calibrated range, widened to hold 0 so that 0.0 is exactly a uint8
 * level (the zero point): padding and relu's zeros are exact. A non-negative range (after a
 * relu) gets zero point 0, so QuantizeLinear's saturation at 0 is that relu.
 */
export function uint8Params(r: TensorRange): QuantParams {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / 255);
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

/** Scale and zero point initializers of `params`. */
function paramInitializers(g: OnnxGraphBuilder, name: string, params: QuantParams): { scale: string; zeroPoint: string } {
  return { scale: g.addFloats(`${name}/scale`, [params.scale], []), zeroPoint: g.addInitializer(`${name}/zero_point`, 'uint8', [], [params.zeroPoint]) };
}

/** QuantizeLinear with fixed parameters: values beyond the calibrated range saturate at 0 / 255. */
export function quantizeStatic(g: OnnxGraphBuilder, x: string, name: string, params: QuantParams): QTensor {
  const { scale, zeroPoint } = paramInitializers(g, name, params);
  return { name: g.addNode('QuantizeLinear', [x, scale, zeroPoint], 1)[0], params, scale, zeroPoint };
}

/** Back to float32. */
export function dequantizeStatic(g: OnnxGraphBuilder, x: QTensor): string {
  return g.addNode('DequantizeLinear', [x.name, x.scale, x.zeroPoint], 1)[0];
}

/** A bias in the int32 accumulator's units (input scale x weight scale per channel), zero point 0. */
function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): Int32Array {
  return Int32Array.from(bias, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / (Math.fround(inputScale) * weightScales[c])))));
}

/** Per-output-channel int8 (or uint8) weights and the int32 bias that goes with them. */
function quantizedWeights(g: OnnxGraphBuilder, name: string, weights: Float32Array, channels: number, channelOf: (i: number) => number, dims: number[], type: WeightType, bias: Float32Array | undefined, inputScale: number) {
  const q = quantizePerChannel(weights, channels, channelOf, type);
  const W = g.addInitializer(`${name}/kernel_quantized`, type, dims, q.values);
  const wScale = g.addFloats(`${name}/kernel_scale`, q.scales);
  const wZero = g.addInitializer(`${name}/kernel_zero_point`, type, [channels], new Array<number>(channels).fill(q.zeroPoint));
  const b = bias ? quantizeBias(bias, inputScale, q.scales) : undefined;
  return { W, wScale, wZero, bias: b ? g.addInitializer(`${name}/bias_quantized`, 'int32', [channels], b) : undefined };
}

/** One Conv2D layer (tfjs kernel [kh, kw, cin, cout]) for {@link qlinearConv}. */
export interface StaticConvLayer {
  name: string;
  kernel: Float32Array;
  bias?: Float32Array;
  geometry: ConvGeometry;
  weightType: WeightType;
}

/**
 * QLinearConv on an NHWC uint8 tensor (com.microsoft's channels_last form, what onnxruntime's
 * kernel computes in; ONNX's NCHW QLinearConv transposes in and out of it): per-output-channel
 * weights, the bias as int32 in units of input_scale * weight_scale, and the output requantized
 * to `out` (a relu is fused by a non-negative `out` range: negative results saturate to zero
 * point 0). Returns NHWC.
 */
export function qlinearConv(g: OnnxGraphBuilder, x: QTensor, l: StaticConvLayer, out: QuantParams): QTensor {
  const c = l.geometry;
  const perChannel = c.cin * c.kh * c.kw;
  const onnxKernel = new Float32Array(l.kernel.length);
  for (let y = 0; y < c.kh; y++)
    for (let xx = 0; xx < c.kw; xx++)
      for (let i = 0; i < c.cin; i++)
        for (let o = 0; o < c.cout; o++) onnxKernel[((o * c.cin + i) * c.kh + y) * c.kw + xx] = l.kernel[((y * c.kw + xx) * c.cin + i) * c.cout + o];
  const w = quantizedWeights(g, l.name, onnxKernel, c.cout, (i) => Math.floor(i / perChannel), [c.cout, c.cin, c.kh, c.kw], l.weightType, l.bias, x.params.scale);
  const y = paramInitializers(g, `${l.name}/output`, out);
  const attrs = { kernel_shape: [c.kh, c.kw], strides: [...c.strides], dilations: [...c.dilations], pads: [...c.pads], channels_last: 1 };
  const inputs = [x.name, x.scale, x.zeroPoint, w.W, w.wScale, w.wZero, y.scale, y.zeroPoint, ...(w.bias ? [w.bias] : [])];
  return { name: g.addNode('QLinearConv', inputs, 1, attrs, MS_DOMAIN)[0], params: out, ...y };
}

/**
 * How an int8-static Conv2D runs: 'dense' / 'im2col' (see {@link qgemmConv}), 'qlinearconv'
 * (see {@link qlinearConv}), or 'float' (a float32 Conv between dequantized / quantized
 * tensors).
 */
export type StaticConvLowering = 'dense' | 'im2col' | 'qlinearconv' | 'float';

/** Layout of a {@link qgemmConv} input: a ConvInput, or 'nchw' already flattened to [B, C*H*W]. */
export type StaticConvInput = ConvInput | 'nchw-flat';

/**
 * A Conv2D as one com.microsoft.QGemm on uint8 data, lowered as the dynamic int8 path does (see
 * quantizedConv2d): 'dense' multiplies the flat input [B, inH*inW*cin] (NHWC memory order, or
 * NCHW for `input` 'nchw') by the unrolled convolution matrix; 'im2col' gathers each output
 * cell's taps from the channels-last input [B, inH*inW, cin] (padding cells hold the input zero
 * point, i.e. exactly 0.0) and multiplies [B*cells, K] by the [K, cout] kernel. Weight scales,
 * zero points and the int32 bias are per output channel (tiled over the cells for 'dense');
 * the output is requantized to `out`.
 *
 * Returns [B, outH*outW*cout] ('dense', rank 2) or [B, outH*outW, cout] ('im2col', rank 3),
 * in NHWC memory order.
 */
export function qgemmConv(g: OnnxGraphBuilder, x: QTensor, input: StaticConvInput, l: StaticConvLayer, out: QuantParams, lowering: 'dense' | 'im2col'): { y: QTensor; rank: 2 | 3 } {
  const c = l.geometry;
  const taps = c.kh * c.kw;
  const K = taps * c.cin;
  const node = (type: string, inputs: string[], attrs = {}, domain = ''): string => g.addNode(type, inputs, 1, attrs, domain)[0];
  const reshape = (t: string, dims: number[]): string => node('Reshape', [t, g.addInt64s(`${l.name}/shape`, dims)]);
  const q = quantizePerChannel(l.kernel, c.cout, (i) => i % c.cout, l.weightType);
  const { indices, positions, readsPadding } = im2colIndices(c);
  const bias = l.bias ? quantizeBias(l.bias, x.params.scale, q.scales) : undefined;
  const y = paramInitializers(g, `${l.name}/output`, out);
  const qgemm = (a: string, W: string, repeat: number): string => {
    const n = repeat * c.cout;
    const wScale = g.addFloats(`${l.name}/kernel_scale`, tile(q.scales, repeat));
    // QGemm wants as many weight zero points as scales.
    const wZero = g.addInitializer(`${l.name}/kernel_zero_point`, l.weightType, [n], new Array<number>(n).fill(q.zeroPoint));
    const b = bias ? g.addInitializer(`${l.name}/bias_quantized`, 'int32', [n], tile(bias, repeat)) : '';
    return node('QGemm', [a, x.scale, x.zeroPoint, W, wScale, wZero, b, y.scale, y.zeroPoint], {}, MS_DOMAIN);
  };
  if (lowering === 'dense') {
    const W = g.addInitializer(`${l.name}/kernel_unrolled`, l.weightType, [c.inH * c.inW * c.cin, positions * c.cout], denseConvMatrix(c, indices, q.values, q.zeroPoint, input === 'nchw' || input === 'nchw-flat'));
    const flat = input === 'flat' || input === 'nchw-flat';
    return { y: { name: qgemm(flat ? x.name : reshape(x.name, [0, c.inH * c.inW * c.cin]), W, positions), params: out, ...y }, rank: 2 };
  }
  if (input === 'nchw' || input === 'nchw-flat') throw new Error(`qgemmConv: '${l.name}': the im2col lowering reads a channels-last input`);
  let src = input === 'rows' ? x.name : reshape(x.name, [0, c.inH * c.inW, c.cin]);
  if (readsPadding) src = node('Pad', [src, g.addInt64s(`${l.name}/pads`, [0, 0, 0, 0, 1, 0]), x.zeroPoint]);
  const cols = node('Gather', [src, g.addInitializer(`${l.name}/im2col_indices`, 'int32', [positions, taps], indices)], { axis: 1 });
  const W = g.addInitializer(`${l.name}/kernel_quantized`, l.weightType, [K, c.cout], q.values);
  return { y: { name: reshape(qgemm(reshape(cols, [-1, K]), W, 1), [-1, positions, c.cout]), params: out, ...y }, rank: 3 };
}

function tile<T extends Float32Array | Int32Array>(v: T, times: number): T {
  const out = new (v.constructor as new (n: number) => T)(v.length * times);
  for (let i = 0; i < times; i++) out.set(v, i * v.length);
  return out;
}

/** One Dense layer (tfjs kernel [K, N]) for {@link qlinearDense}. */
export interface StaticDenseLayer {
  name: string;
  weights: Float32Array;
  dims: readonly [number, number];
  bias?: Float32Array;
  weightType: WeightType;
}

/**
 * A Dense layer on a uint8 [B, K] tensor as one com.microsoft.QGemm (onnxruntime's contrib op):
 * per-column int8 weights and the bias as int32 (input_scale * weight_scale units, zero point
 * 0) in the op itself. With `out`, the result is requantized to it (a relu fused by a
 * non-negative range) and returned as a QTensor; without, QGemm outputs float32 (before any
 * activation), e.g. the logits in front of a float softmax.
 *
 * Measured on the digits models (batch 1 / 32, onnxruntime 1.30, one thread), against the
 * standard-ONNX alternatives that keep the bias: QLinearMatMul (no bias input) ->
 * DequantizeLinear -> Add -> QuantizeLinear was 0.58x / 0.65x fp32 for the MLP where QGemm
 * was 0.75x / 0.90x, and a 1x1 QLinearConv on [B, K, 1, 1] 0.57x / 0.51x.
 */
export function qlinearDense(g: OnnxGraphBuilder, x: QTensor, l: StaticDenseLayer, out: QuantParams | undefined): QTensor | string {
  const [K, N] = l.dims;
  if (K * N !== l.weights.length) throw new Error(`qlinearDense: '${l.name}' has ${l.weights.length} weights for [${K}, ${N}]`);
  const w = quantizedWeights(g, l.name, l.weights, N, (i) => i % N, [K, N], l.weightType, l.bias, x.params.scale);
  const y = out ? paramInitializers(g, `${l.name}/output`, out) : undefined;
  const inputs = [x.name, x.scale, x.zeroPoint, w.W, w.wScale, w.wZero, w.bias ?? '', ...(y ? [y.scale, y.zeroPoint] : [])];
  const [name] = g.addNode('QGemm', inputs, 1, {}, MS_DOMAIN);
  return y && out ? { name, params: out, ...y } : name;
}
