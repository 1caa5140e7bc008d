import type { OnnxGraphBuilder } from './onnx-writer.js';
import { quantizePerChannel, type WeightType } from './quantize.js';
import { dequantizeRows, quantizeRows } from './quantized-linear.js';

/** Static geometry of one 2-D convolution (TF semantics, explicit pads). */
export interface ConvGeometry {
  inH: number;
  inW: number;
  cin: number;
  kh: number;
  kw: number;
  cout: number;
  strides: readonly [number, number];
  dilations: readonly [number, number];
  /** [top, left, bottom, right] */
  pads: readonly number[];
  outH: number;
  outW: number;
}

/** A max pooling folded into the convolution before it (see {@link quantizedConv2d}). */
export interface PoolGeometry {
  poolH: number;
  poolW: number;
  strides: readonly [number, number];
  /** [top, left, bottom, right]; padded cells are never the maximum, as in TF. */
  pads: readonly number[];
  outH: number;
  outW: number;
}

/** One channels-last Conv2D layer to export with int8 arithmetic. */
export interface QuantizedConvLayer {
  name: string;
  /** tfjs kernel layout [kh, kw, cin, cout], which is already the [K, cout] im2col matrix. */
  kernel: Float32Array;
  bias?: Float32Array;
  geometry: ConvGeometry;
  weightType: WeightType;
  /** A following MaxPooling2D folded in; only valid before a monotone non-decreasing activation. */
  pool?: PoolGeometry;
}

/** How an int8 convolution is lowered to MatMulInteger (see {@link quantizedConv2d}). */
export type ConvLowering = 'im2col' | 'dense';

/**
 * Layout of a convolution's input: [B, H*W, C] ('rows') or [B, H*W*C] ('flat'), both in
 * tfjs's NHWC memory order, or ONNX's [B, C, H, W] ('nchw', 'dense' lowering only).
 */
export type ConvInput = 'rows' | 'flat' | 'nchw';

/**
 * int8 Conv2D as MatMulInteger, on activations quantized per row (per sample, see
 * quantizeRows) and weights quantized per output channel, like a Dense layer. onnxruntime's
 * ConvInteger CPU kernel is several times slower than its float Conv; MatMulInteger runs on
 * MLAS's fast u8s8 GEMM. Tensors stay channels-last with the spatial axes flattened (the
 * memory order of tfjs's NHWC), as [B, H*W, C] or [B, H*W*C], so no Transpose is needed.
 *
 * 'im2col', x: [B, inH*inW, cin]:
 *
 *   xq  = QuantizeLinear(x, s, zp, axis=0)                  [B, inH*inW, cin] uint8
 *   xp  = Pad(xq, +1 cell on axis 1, value zp)              the extra cell is the padding
 *   col = Gather(xp, idx, axis=1)                           [B, outH*outW, kh*kw, cin]
 *   acc = MatMulInteger(Reshape(col, [B, outH*outW, K]), Wq[K, cout])        int32, exact
 *   y   = DequantizeLinear(acc, s, axis=0) * w_scale + bias      [B, outH*outW, cout]
 *
 * `idx` is a constant computed here: for every output position and kernel tap, the flat
 * input cell it reads, or the padding cell for taps outside the image ('same' padding), whose
 * value is the zero point, i.e. exactly 0.0 after dequantization. Strides and dilations only
 * change `idx`.
 *
 * 'dense', x: [B, inH*inW*cin]: the convolution as one matrix, Wd [inH*inW*cin,
 * outH*outW*cout], holding each output position's kernel taps at the rows of the input cells
 * they read (the rest is the weight zero point), so no Pad, Gather or Reshape:
 *
 *   acc = MatMulInteger(QuantizeLinear(x, s, zp, axis=0), Wd)       [B, outH*outW*cout]
 *
 * Wd's rows can follow any input order, so it also reads an NCHW input (e.g. from a float
 * convolution) without a Transpose.
 *
 * Its products are those of 'im2col' minus the padding taps, which contribute exactly 0, so
 * both give the same int32 accumulators; it does (inH*inW)/(kh*kw) times the multiply-adds,
 * which for small images costs less than the Gather (a few ns per copied block).
 *
 * With `pool`, a following non-overlapping max pooling is folded in: the conv outputs are
 * laid out [window, P, cout] (P pooled positions) and the window maximum is taken over the
 * int32 accumulators (ReduceMax over the window axis), before dequantization.
 * Dequantization, the bias and relu are monotone non-decreasing per row and channel (every
 * scale is > 0), so this equals pooling afterwards, bit for bit, with a quarter of the
 * elementwise work for 2x2 pools. Window cells in the pooling's own 'same' padding repeat a
 * real cell of the window, which leaves the maximum unchanged.
 *
 * Returns the output and its rank: [B, P, cout] ('im2col') or [B, P*cout] ('dense'), where
 * P = outH*outW, or pool.outH*pool.outW when pooled.
 */
export function quantizedConv2d(g: OnnxGraphBuilder, x: string, input: ConvInput, l: QuantizedConvLayer, nonNegative: boolean, lowering: ConvLowering): { y: string; rank: 2 | 3 } {
  const c = l.geometry;
  const taps = c.kh * c.kw;
  const K = taps * c.cin;
  if (l.kernel.length !== K * c.cout) throw new Error(`quantizedConv2d: '${l.name}' has ${l.kernel.length} weights for [${c.kh}, ${c.kw}, ${c.cin}, ${c.cout}]`);
  const op = (type: string, inputs: string[], attrs = {}): string => g.addNode(type, inputs, 1, attrs)[0];
  const reshape = (t: string, dims: number[]): string => op('Reshape', [t, g.addInt64s(`${l.name}/shape`, dims)]);

  const q = quantizePerChannel(l.kernel, c.cout, (i) => i % c.cout, l.weightType);
  const wZero = g.addInitializer(`${l.name}/kernel_zero_point`, l.weightType, [], [q.zeroPoint]);
  const { indices, positions, window, readsPadding } = im2colIndices(c, l.pool);
  // Quantized in the input's own shape; reshaping the uint8 copies a quarter of the bytes.
  const { xq, scale, zeroPoint } = quantizeRows(g, x, l.name, { rows: 3, flat: 2, nchw: 4 }[input], nonNegative);
  let acc: string;
  if (lowering === 'dense') {
    const Wd = denseConvMatrix(c, indices, q.values, q.zeroPoint, input === 'nchw');
    const W = g.addInitializer(`${l.name}/kernel_unrolled`, l.weightType, [c.inH * c.inW * c.cin, window * positions * c.cout], Wd);
    acc = op('MatMulInteger', [input === 'flat' ? xq : reshape(xq, [0, c.inH * c.inW * c.cin]), W, zeroPoint, wZero]);
    if (window > 1) acc = op('ReduceMax', [reshape(acc, [0, window, positions * c.cout])], { axes: [1], keepdims: 0 });
    return { y: dequantizeRows(g, acc, scale, l.name, q.scales, l.bias, positions, true), rank: 2 };
  }
  if (input === 'nchw') throw new Error(`quantizedConv2d: '${l.name}': the im2col lowering reads a channels-last input`);
  const W = g.addInitializer(`${l.name}/kernel_quantized`, l.weightType, [K, c.cout], q.values);
  let src = input === 'rows' ? xq : reshape(xq, [0, c.inH * c.inW, c.cin]);
  // The padding cell: one extra cell at the end of the flattened spatial axis.
  if (readsPadding) src = op('Pad', [src, g.addInt64s(`${l.name}/pads`, [0, 0, 0, 0, 1, 0]), zeroPoint]);
  const idxDims = window > 1 ? [window, positions, taps] : [positions, taps];
  const cols: string = op('Gather', [src, g.addInitializer(`${l.name}/im2col_indices`, 'int32', idxDims, indices)], { axis: 1 });
  acc = op('MatMulInteger', [reshape(cols, window > 1 ? [0, window, positions, K] : [0, positions, K]), W, zeroPoint, wZero]);
  if (window > 1) acc = op('ReduceMax', [acc], { axes: [1], keepdims: 0 });
  return { y: dequantizeRows(g, acc, scale, l.name, q.scales, l.bias, positions), rank: 3 };
}

/**
 * The convolution as one [inH*inW*cin, window*positions*cout] matrix of quantized weights: the
 * column of output (cell, o) holds kernel tap t's weights for channel o at the rows of the
 * input cell that tap reads (indices[cell * taps + t]); taps in the padding and every other
 * entry get the weight zero point, i.e. weight 0. Rows follow the input's memory order: NHWC
 * (cell, channel), or NCHW (channel, cell) when `nchw`.
 */
export function denseConvMatrix(c: ConvGeometry, indices: Int32Array, kernel: Int8Array | Uint8Array, zeroPoint: number, nchw: boolean): Int8Array | Uint8Array {
  const taps = c.kh * c.kw;
  const cells = indices.length / taps;
  const cols = cells * c.cout;
  const out = kernel instanceof Int8Array ? new Int8Array(c.inH * c.inW * c.cin * cols) : new Uint8Array(c.inH * c.inW * c.cin * cols);
  out.fill(zeroPoint);
  const padCell = c.inH * c.inW;
  for (let cell = 0; cell < cells; cell++)
    for (let t = 0; t < taps; t++) {
      const src = indices[cell * taps + t];
      if (src === padCell) continue;
      for (let i = 0; i < c.cin; i++)
        for (let o = 0; o < c.cout; o++) out[(nchw ? i * padCell + src : src * c.cin + i) * cols + cell * c.cout + o] = kernel[(t * c.cin + i) * c.cout + o];
    }
  return out;
}

/**
 * The im2col Gather indices into the flattened, padded input [inH*inW + 1] (the last cell is
 * the padding), as [window, positions, kh*kw]: with a folded pool, `positions` pooled cells
 * and the `window` conv cells of each, window-major so that the maximum runs over the outer
 * axis; without, window = 1.
 */
export function im2colIndices(c: ConvGeometry, pool?: PoolGeometry): { indices: Int32Array; positions: number; window: number; readsPadding: boolean } {
  const padCell = c.inH * c.inW;
  const taps = c.kh * c.kw;
  // Conv output cells, in the order they are read: [window, positions] of (y, x).
  const cells: [number, number][] = [];
  if (pool) {
    for (let wy = 0; wy < pool.poolH; wy++)
      for (let wx = 0; wx < pool.poolW; wx++)
        for (let py = 0; py < pool.outH; py++)
          for (let px = 0; px < pool.outW; px++) {
            // A window cell in the pooling's padding repeats the nearest real cell, which is in
            // the same window (every window holds at least one real cell).
            const y = clamp(py * pool.strides[0] - pool.pads[0] + wy, 0, c.outH - 1);
            const x = clamp(px * pool.strides[1] - pool.pads[1] + wx, 0, c.outW - 1);
            cells.push([y, x]);
          }
  } else {
    for (let y = 0; y < c.outH; y++) for (let x = 0; x < c.outW; x++) cells.push([y, x]);
  }
  const indices = new Int32Array(cells.length * taps);
  let readsPadding = false;
  cells.forEach(([oy, ox], p) => {
    for (let ky = 0; ky < c.kh; ky++)
      for (let kx = 0; kx < c.kw; kx++) {
        const iy = oy * c.strides[0] - c.pads[0] + ky * c.dilations[0];
        const ix = ox * c.strides[1] - c.pads[1] + kx * c.dilations[1];
        const inside = iy >= 0 && iy < c.inH && ix >= 0 && ix < c.inW;
        readsPadding ||= !inside;
        indices[p * taps + ky * c.kw + kx] = inside ? iy * c.inW + ix : padCell;
      }
  });
  const window = pool ? pool.poolH * pool.poolW : 1;
  return { indices, positions: cells.length / window, window, readsPadding };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}

/**
 * MaxPooling2D on a channels-last 'rows' tensor x: [B, H*W, C] (shapeIn: its tfjs shape
 * [B, H, W, C]) without leaving that layout: Gather every window ([B, window, P, C]), then
 * ReduceMax over the window. Exact; cells in 'same' padding repeat a real cell of their window.
 */
export function maxPoolRows(g: OnnxGraphBuilder, x: string, name: string, shapeIn: readonly (number | null)[], pool: PoolGeometry): string {
  const [, H, W, C] = shapeIn as number[];
  const cells: ConvGeometry = { inH: H, inW: W, cin: C, kh: 1, kw: 1, cout: C, strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], outH: H, outW: W };
  const { indices, positions, window } = im2colIndices(cells, pool);
  const [windows] = g.addNode('Gather', [x, g.addInitializer(`${name}/window_indices`, 'int32', [window, positions], indices)], 1, { axis: 1 });
  return g.addNode('ReduceMax', [windows], 1, { axes: [1], keepdims: 0 })[0];
}
