import type { LayersModel } from '@tensorflow/tfjs-layers';
import { activation, isNonNegative } from './activations.js';
import { calibrateRanges, type CalibrationData, type CalibrationMethod, type LayerRanges } from './calibrate.js';
import { MS_DOMAIN, OnnxGraphBuilder } from './onnx-writer.js';
import type { WeightType } from './quantize.js';
import { maxPoolRows, quantizedConv2d, type ConvGeometry, type ConvLowering, type PoolGeometry } from './quantized-conv.js';
import { quantizedLinear } from './quantized-linear.js';
import { dequantizeStatic, qgemmConv, qlinearConv, qlinearDense, quantizeStatic, uint8Params, type QTensor, type StaticConvInput, type StaticConvLowering } from './quantized-static.js';

/** Options of {@link exportToOnnx}. */
export interface ExportOnnxOptions {
  /**
   * 'int8': Dense and Conv2D run as MatMulInteger (a Conv2D lowered to one, see
   * quantizedConv2d) with per-channel int8 weights and activations quantized per row at run
   * time, so a row's result does not depend on its batch (see quantizeRows); everything else
   * stays float32, and so do convolutions shallower than `minInt8ConvDepth`.
   *
   * 'int8-static': static quantization with calibration (QLinear operators): activation scales
   * and zero points are fixed at export from ranges measured on `calibration` (see
   * calibrateRanges), so the graph stays uint8 between quantized layers: a QuantizeLinear in
   * front of the first one, Dense as com.microsoft.QGemm and Conv2D as a QGemm on the unrolled
   * or im2col matrix (see qgemmConv), per-output-channel 7-bit int8 weights, int32 bias, a
   * relu fused into the output range, max pooling on uint8 (com.microsoft.NhwcMaxPool), then
   * DequantizeLinear, or a float-output QGemm, where a float op needs it (softmax, tanh,
   * batch normalisation, a convolution kept float32 by `staticConvLowering`). For example the
   * digits CNN: Conv (float, 1 channel) -> MaxPool -> Flatten -> QuantizeLinear -> QGemm
   * (conv2) -> NhwcMaxPool -> Flatten -> QGemm (dense, uint8 out) -> QGemm (float logits) ->
   * Softmax. Fixed scales make every row independent of its batch by construction; values
   * beyond the calibrated range saturate at the ends of it.
   */
  quantize: 'float32' | 'int8' | 'int8-static';
  /**
   * int8-static only (required): rows to calibrate activation ranges on, as the model sees
   * them (e.g. the standardised training split).
   */
  calibration?: CalibrationData;
  /** int8-static only: how ranges are taken (default {@link DEFAULT_CALIBRATION}). */
  calibrationMethod?: CalibrationMethod;
  /**
   * int8-static only: how a Conv2D runs (see StaticConvLowering). 'auto' (default) takes the
   * int8 lowering {@link int8ConvLowering} picks, or 'float' where it keeps float32 (e.g. a
   * 3x3 convolution of a 1-channel image); the others force one (tests, benchmarks).
   */
  staticConvLowering?: 'auto' | StaticConvLowering;
  /** Graph input name (default 'input'). */
  inputName?: string;
  /** Name of the model's final output (default 'probabilities'). */
  outputName?: string;
  /** Add a second output `embedding`: the penultimate Dense layer's output, after its activation. */
  embeddingOutput?: boolean;
  /**
   * Storage type of quantized weights: 'int8' (default; 7-bit range so ORT's AVX2 u8s8
   * kernels cannot saturate, see quantize.ts) runs on ORT's fast u8s8 kernels; 'uint8' (zero
   * point 128, full 8-bit range) on its slower u8u8 ones.
   */
  weightType?: WeightType;
  /**
   * int8 only: Conv2D layers with fewer weights per output than this (kh*kw*cin; default
   * {@link DEFAULT_MIN_INT8_CONV_DEPTH}) stay float32. Such a layer (typically the first one,
   * on a 1-channel image) has too little arithmetic for int8 to gain anything over quantizing
   * its input per row, and a float first layer is the more accurate. 0 quantizes every one.
   */
  minInt8ConvDepth?: number;
  /**
   * int8 only: how Conv2D becomes a MatMulInteger (see quantizedConv2d). 'auto' (default)
   * takes the faster of the two by a cost model, or keeps float32 where neither pays, see
   * {@link int8ConvLowering}; 'dense' and 'im2col' force one (tests, benchmarks).
   */
  int8ConvLowering?: 'auto' | ConvLowering;
}

/**
 * Default of {@link ExportOnnxOptions.minInt8ConvDepth}: a 3x3 convolution of a 1-channel
 * image stays float (the digits CNN's first layer: as int8 it made the model slower, 0.95x
 * fp32 at batch 32 against 1.15x with it in float32).
 */
export const DEFAULT_MIN_INT8_CONV_DEPTH = 16;

/** Default calibration of int8-static exports. */
export const DEFAULT_CALIBRATION: CalibrationMethod = { method: 'percentile', percentile: 99.99 };

/** Activations an int8-static Dense / Conv2D folds into its output range (saturation at 0 is relu). */
const FUSED_IN_RANGE = new Set(['linear', 'relu', 'relu6']);
/** Layers that run on uint8 in an int8-static graph, keeping their input's quantization. */
const UINT8_PASSTHROUGH = new Set(['MaxPooling2D', 'Flatten', 'Reshape']);

type Layer = LayersModel['layers'][number];
type Shape = (number | null)[];

/** Layers that only matter during training. */
const INFERENCE_NO_OPS = new Set(['Dropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'InputLayer']);

/**
 * Activations that are monotone non-decreasing bit for bit in onnxruntime (no approximated
 * transcendental), so a max pooling after them can be taken before them (see quantizedConv2d).
 */
const EXACTLY_MONOTONE = new Set(['linear', 'relu', 'relu6']);

/**
 * Layout of the current tensor when it is an image: 'nhwc' (tfjs's), 'nchw' (ONNX Conv/Pool's),
 * 'rows' ([B, H*W, C]) or 'flat' ([B, H*W*C]). 'rows' and 'flat' have the memory order of
 * 'nhwc' and are what int8 convolutions read and write.
 */
type Layout = 'nhwc' | 'nchw' | 'rows' | 'flat';

/**
 * Export a single-input, single-output chain of tfjs layers (a Sequential model) to ONNX
 * (opset 17). tfjs is channels-last (NHWC) and ONNX Conv/Pool are NCHW: 4-D tensors are
 * transposed lazily, only when the next layer needs the other layout, so Flatten and Reshape
 * always see NHWC memory order and flatten in the same order as tfjs. int8 convolutions and the
 * max poolings after them stay channels-last ('rows' / 'flat'), without Transposes. Throws
 * naming any unsupported layer.
 */
export function exportToOnnx(model: LayersModel, opts: ExportOnnxOptions): Uint8Array {
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'probabilities';
  const int8 = opts.quantize === 'int8';
  const staticInt8 = opts.quantize === 'int8-static';
  const weightType = opts.weightType ?? 'int8';
  /** How a Conv2D layer runs as int8, or undefined when it stays float32. */
  const convPlan = (l: Layer): ConvLowering | undefined => (int8 ? int8ConvLowering(convGeometry(l), opts) : undefined);
  /**
   * Whether the output of layers[index] only feeds the per-row quantization of an int8 layer,
   * through layers that commute with relu (max pooling, reshapes, inference no-ops). A relu
   * there is left to that quantization: its input is then quantized as non-negative, with zero
   * point 0, and QuantizeLinear saturates negatives to 0, exactly as relu would (and the
   * per-row scale is the same: the guarded maximum is 0 or the row's positive maximum either
   * way), which saves a pass over the tensor.
   */
  const feedsQuantizer = (index: number): boolean => {
    for (const next of layers.slice(index + 1)) {
      const cls = next.getClassName();
      if (INFERENCE_NO_OPS.has(cls) || cls === 'Flatten' || cls === 'Reshape' || cls === 'MaxPooling2D') continue;
      return (cls === 'Dense' && int8) || (cls === 'Conv2D' && convPlan(next) !== undefined);
    }
    return false;
  };
  /** int8-static: how a Conv2D layer runs. */
  const staticConvPlan = (l: Layer): StaticConvLowering => {
    const choice = opts.staticConvLowering ?? 'auto';
    return choice === 'auto' ? (int8ConvLowering(convGeometry(l), { minInt8ConvDepth: opts.minInt8ConvDepth }) ?? 'float') : choice;
  };
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('exportToOnnx: only single-input, single-output models are supported');

  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  checkLinearChain(layers);
  let ranges: Map<Layer, LayerRanges> | undefined;
  if (staticInt8) {
    if (!opts.calibration) throw new Error("exportToOnnx: quantize 'int8-static' needs calibration rows");
    ranges = calibrateRanges(model, layers, opts.calibration, opts.calibrationMethod ?? DEFAULT_CALIBRATION);
  }
  /** int8-static: whether the output of layers[index] reaches a Dense / Conv2D through uint8-only layers. */
  const feedsStatic = (index: number): boolean => {
    for (const next of layers.slice(index + 1)) {
      const cls = next.getClassName();
      if (INFERENCE_NO_OPS.has(cls) || UINT8_PASSTHROUGH.has(cls)) continue;
      return cls === 'Dense' || (cls === 'Conv2D' && staticConvPlan(next) !== 'float');
    }
    return false;
  };
  const denseLayers = layers.filter((l) => l.getClassName() === 'Dense');
  if (opts.embeddingOutput && denseLayers.length < 2) throw new Error('exportToOnnx: embeddingOutput needs at least two Dense layers');
  const embeddingLayer = opts.embeddingOutput ? denseLayers[denseLayers.length - 2] : undefined;

  const g = new OnnxGraphBuilder(model.name);
  const inShape = model.inputs[0].shape;
  let cur = g.addInput({ name: inputName, elemType: 'float32', shape: onnxShape(inShape) });
  g.addOutput({ name: outputName, elemType: 'float32', shape: onnxShape(model.outputs[0].shape) });
  if (embeddingLayer) g.addOutput({ name: 'embedding', elemType: 'float32', shape: onnxShape(outShape(embeddingLayer)) });

  // Layout of the current tensor, whose tfjs (NHWC) shape is `shape` (the layer's input shape).
  let layout = 'nhwc' as Layout;
  const reshape = (dims: number[]): void => {
    [cur] = g.addNode('Reshape', [cur, g.addInt64s('shape', dims)], 1);
  };
  // With a single channel, NHWC and NCHW hold the same bytes: a Reshape is enough.
  const toNhwc = (shape: Shape): void => {
    if (layout === 'nchw' && shape[3] !== 1) [cur] = g.addNode('Transpose', [cur], 1, { perm: [0, 2, 3, 1] });
    else if (layout !== 'nhwc') reshape([0, ...(shape.slice(1) as number[])]);
    layout = 'nhwc';
  };
  const toNchw = (shape: Shape): void => {
    if (layout !== 'nhwc' && layout !== 'nchw') toNhwc(shape);
    if (layout === 'nhwc' && shape[3] !== 1) [cur] = g.addNode('Transpose', [cur], 1, { perm: [0, 3, 1, 2] });
    else if (layout === 'nhwc') reshape([0, 1, shape[1] as number, shape[2] as number]);
    layout = 'nchw';
  };
  /** To 'rows' or 'flat' (a Reshape, or a Transpose from NCHW first). */
  const toChannelsLast = (shape: Shape, target: 'rows' | 'flat'): void => {
    if (layout === target) return;
    if (layout === 'nchw') toNhwc(shape);
    const [h, w, c] = shape.slice(1) as number[];
    reshape(target === 'rows' ? [0, h * w, c] : [0, h * w * c]);
    layout = target;
  };
  /** Per-channel ops (BatchNormalization, softmax) need the channels on their own last axis. */
  const channelsOwnAxis = (shape: Shape): void => {
    if (layout === 'flat' && shape.length === 4) toChannelsLast(shape, 'rows');
  };
  // MaxPooling2D layers already folded into the int8 convolution before them.
  const folded = new Set<Layer>();

  // int8-static: the quantization of `cur` while it is uint8 (undefined while it is float).
  let quant: Omit<QTensor, 'name'> | undefined;
  const quantized = (): QTensor => ({ name: cur, ...quant! });
  const dequantize = (): void => {
    if (quant) cur = dequantizeStatic(g, quantized());
    quant = undefined;
  };
  /** int8-static: `cur` as uint8, quantized with the calibrated range of `layer`'s input if it is float. */
  const quantizeInput = (layer: Layer): QTensor => {
    if (!quant) {
      const { name, ...rest } = quantizeStatic(g, cur, `${layer.name}/input`, uint8Params(ranges!.get(layer)!.input));
      cur = name;
      quant = rest;
    }
    return quantized();
  };
  const setQuantized = (q: QTensor): void => {
    const { name, ...rest } = q;
    cur = name;
    quant = rest;
  };

  // True while every value of the current tensor is known to be >= 0 (e.g. after a relu), or a
  // relu is left to its quantization (see feedsQuantizer): its per-row int8 quantization then
  // needs no zero point.
  let nonNegative = false;
  for (const [index, layer] of layers.entries()) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Record<string, unknown>;
    const w = weightsOf(layer);
    const shapeIn = inputShapeOf(layer);
    const rankIn = shapeIn.length;
    const nchw = layout === 'nchw';
    if (INFERENCE_NO_OPS.has(cls) || folded.has(layer)) continue;
    if (quant && cls !== 'Dense' && cls !== 'Conv2D' && !UINT8_PASSTHROUGH.has(cls)) dequantize();
    switch (cls) {
      case 'Dense': {
        if (rankIn !== 2) throw new Error(`exportToOnnx: Dense layer '${layer.name}' on a rank-${rankIn} input is not supported (add a Flatten)`);
        const kernel = w.get('kernel')!;
        const bias = w.get('bias');
        const [nIn, nOut] = kernel.shape;
        const act = String(cfg.activation ?? 'linear');
        if (staticInt8) {
          const r = ranges!.get(layer)!;
          // Stays uint8 when its activation is fused into the output range and a quantized layer is next.
          const keep = FUSED_IN_RANGE.has(act) && feedsStatic(index);
          const spec = { name: layer.name, weights: kernel.data, dims: [nIn, nOut] as const, bias: bias?.data, weightType };
          const y = qlinearDense(g, quantizeInput(layer), spec, keep ? uint8Params(r.output) : undefined);
          if (typeof y === 'string') {
            cur = activation(g, y, act, layer, nchw);
            quant = undefined;
          } else setQuantized(y);
          if (layer === embeddingLayer) g.addNode(quant ? 'DequantizeLinear' : 'Identity', quant ? [cur, quant.scale, quant.zeroPoint] : [cur], ['embedding']);
          break;
        }
        if (int8) {
          cur = quantizedLinear(g, cur, { name: layer.name, weights: kernel.data, dims: [nIn, nOut], bias: bias?.data, weightType }, nonNegative);
        } else {
          const W = g.addFloats(`${layer.name}/kernel`, kernel.data, [nIn, nOut]);
          const inputs = bias ? [cur, W, g.addFloats(`${layer.name}/bias`, bias.data)] : [cur, W];
          [cur] = g.addNode('Gemm', inputs, 1);
        }
        if (!(int8 && act === 'relu' && layer !== embeddingLayer && feedsQuantizer(index))) cur = activation(g, cur, act, layer, nchw);
        nonNegative = isNonNegative(act);
        if (layer === embeddingLayer) g.addNode('Identity', [cur], ['embedding']);
        break;
      }
      case 'Conv2D': {
        if (cfg.dataFormat !== 'channelsLast' || rankIn !== 4) throw new Error(`exportToOnnx: Conv2D layer '${layer.name}' must be channelsLast on a 4-D input`);
        const kernel = w.get('kernel')!;
        const geometry = convGeometry(layer);
        const { kh, kw, cin, cout } = geometry;
        const bias = w.get('bias');
        const act = String(cfg.activation ?? 'linear');
        const staticLowering = staticInt8 ? staticConvPlan(layer) : undefined;
        if (staticLowering && staticLowering !== 'float') {
          const r = ranges!.get(layer)!;
          const fused = FUSED_IN_RANGE.has(act);
          const out = uint8Params(fused ? r.output : r.linear!);
          const spec = { name: layer.name, kernel: kernel.data, bias: bias?.data, geometry, weightType };
          if (staticLowering === 'qlinearconv') {
            if (!quant) {
              // To NHWC while float (after an NCHWc Conv or MaxPool onnxruntime folds the Transpose
              // into its ReorderOutput), flattened around the QuantizeLinear: onnxruntime would move it
              // up over a Transpose or MaxPool, onto its slow uint8 NCHW MaxPool.
              toNhwc(shapeIn);
              [cur] = g.addNode('Flatten', [cur], 1, { axis: 1 });
              quantizeInput(layer);
              reshape([0, ...(shapeIn.slice(1) as number[])]);
            } else toNhwc(shapeIn); // a Reshape or Transpose of the uint8 tensor
            setQuantized(qlinearConv(g, quantized(), spec, out));
          } else {
            let input = layout as StaticConvInput;
            if (layout === 'nhwc' || (layout === 'nchw' && staticLowering === 'im2col')) {
              toChannelsLast(shapeIn, staticLowering === 'dense' ? 'flat' : 'rows');
              input = layout as StaticConvInput;
            } else if (layout === 'nchw' && !quant) {
              // The unrolled matrix reads NCHW as is. A float input is flattened before it is
              // quantized: onnxruntime would move a QuantizeLinear right after a MaxPool up
              // before it, onto its slow uint8 NCHW MaxPool.
              [cur] = g.addNode('Flatten', [cur], 1, { axis: 1 });
              input = 'nchw-flat';
            }
            quantizeInput(layer);
            const res = qgemmConv(g, quantized(), input, spec, out, staticLowering);
            setQuantized(res.y);
            layout = res.rank === 2 ? 'flat' : 'rows';
          }
          if (!fused) {
            dequantize();
            if (!isElementwise(act)) channelsOwnAxis(outShape(layer));
            cur = activation(g, cur, act, layer, layout === 'nchw');
          }
          break;
        }
        if (staticLowering === 'float') dequantize();
        const lowering = convPlan(layer);
        if (lowering) {
          const pool = EXACTLY_MONOTONE.has(act) ? foldableMaxPool(layers, index) : undefined;
          if (pool) folded.add(pool.layer);
          // The unrolled matrix reads any layout as is; im2col needs channels last.
          if (layout === 'nhwc' || (layout === 'nchw' && lowering === 'im2col')) toChannelsLast(shapeIn, lowering === 'dense' ? 'flat' : 'rows');
          const spec = { name: layer.name, kernel: kernel.data, bias: bias?.data, geometry, weightType, pool: pool?.geometry };
          const out = quantizedConv2d(g, cur, layout as 'rows' | 'flat' | 'nchw', spec, nonNegative, lowering);
          cur = out.y;
          layout = out.rank === 2 ? 'flat' : 'rows';
          if (!isElementwise(act)) channelsOwnAxis(outShape(pool?.layer ?? layer));
        } else {
          toNchw(shapeIn);
          const attrs = { kernel_shape: [kh, kw], strides: [...geometry.strides], dilations: [...geometry.dilations], pads: [...geometry.pads] };
          const W = g.addFloats(`${layer.name}/kernel`, transposeKernel(kernel.data, kh, kw, cin, cout), [cout, cin, kh, kw]);
          const inputs = bias ? [cur, W, g.addFloats(`${layer.name}/bias`, bias.data)] : [cur, W];
          [cur] = g.addNode('Conv', inputs, 1, attrs);
        }
        // A float Conv fuses its relu; an int8 one can leave it to the next quantization.
        if (!(lowering && act === 'relu' && feedsQuantizer(index))) cur = activation(g, cur, act, layer, layout === 'nchw');
        nonNegative = isNonNegative(act);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        if (cfg.dataFormat !== 'channelsLast' || rankIn !== 4) throw new Error(`exportToOnnx: ${cls} layer '${layer.name}' must be channelsLast on a 4-D input`);
        if (cls === 'MaxPooling2D' && quant && layout !== 'nchw') {
          // int8-static, channels-last uint8: onnxruntime's NhwcMaxPool (its ONNX MaxPool on
          // uint8 is several times slower); padded cells never win, as in TF.
          if (layout !== 'nhwc') reshape([0, ...(shapeIn.slice(1) as number[])]);
          layout = 'nhwc';
          const k = cfg.poolSize as number[];
          [cur] = g.addNode('NhwcMaxPool', [cur], 1, { kernel_shape: k, strides: cfg.strides as number[], pads: pads(layer, k, cfg) }, MS_DOMAIN);
          break;
        }
        if (cls === 'MaxPooling2D' && (layout === 'rows' || layout === 'flat')) {
          // After an int8 convolution: stay channels-last (Gather + ReduceMax, exact).
          toChannelsLast(shapeIn, 'rows');
          cur = maxPoolRows(g, cur, layer.name, shapeIn as number[], poolGeometry(layer));
          break;
        }
        toNchw(shapeIn);
        const k = cfg.poolSize as number[];
        const attrs = { kernel_shape: k, strides: cfg.strides as number[], pads: pads(layer, k, cfg) };
        // TF's 'same' average pooling divides by the number of real (unpadded) cells.
        [cur] = cls === 'MaxPooling2D' ? g.addNode('MaxPool', [cur], 1, attrs) : g.addNode('AveragePool', [cur], 1, { ...attrs, count_include_pad: 0 });
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        if (rankIn !== 4) throw new Error(`exportToOnnx: ${cls} layer '${layer.name}' needs a 4-D input`);
        if (layout === 'rows' || layout === 'flat') {
          toChannelsLast(shapeIn, 'rows');
          [cur] = g.addNode(cls === 'GlobalMaxPooling2D' ? 'ReduceMax' : 'ReduceMean', [cur], 1, { axes: [1], keepdims: 0 });
        } else {
          toNchw(shapeIn);
          [cur] = g.addNode(cls === 'GlobalMaxPooling2D' ? 'GlobalMaxPool' : 'GlobalAveragePool', [cur], 1);
          [cur] = g.addNode('Flatten', [cur], 1, { axis: 1 });
        }
        layout = 'nhwc';
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== rankIn - 1) throw new Error(`exportToOnnx: BatchNormalization layer '${layer.name}' must normalise the last axis`);
        channelsOwnAxis(shapeIn);
        cur = batchNorm(g, cur, layer, w, Number(cfg.epsilon), nchw);
        nonNegative = false;
        break;
      }
      case 'Activation':
        if (!isElementwise(String(cfg.activation))) channelsOwnAxis(shapeIn);
        if (!(cfg.activation === 'relu' && feedsQuantizer(index))) cur = activation(g, cur, String(cfg.activation), layer, nchw);
        nonNegative = isNonNegative(String(cfg.activation)) || (nonNegative && cfg.activation === 'linear');
        break;
      case 'Reshape': {
        // 'rows' has the memory order of 'nhwc': only NCHW needs a Transpose.
        if (layout === 'nchw') toNhwc(shapeIn);
        layout = 'nhwc';
        const target = cfg.targetShape as number[];
        [cur] = g.addNode('Reshape', [cur, g.addInt64s(`${layer.name}/shape`, [0, ...target])], 1);
        break;
      }
      case 'Flatten':
        if (layout === 'nchw') toNhwc(shapeIn);
        if (rankIn !== 2 && layout !== 'flat') [cur] = g.addNode('Flatten', [cur], 1, { axis: 1 });
        layout = 'nhwc';
        break;
      default:
        throw new Error(`exportToOnnx: unsupported layer ${cls} ('${layer.name}')`);
    }
  }
  dequantize();
  toNhwc(model.outputs[0].shape);
  g.addNode('Identity', [cur], [outputName]);
  return g.encode(`exported from tfjs model '${model.name}' (${opts.quantize})`);
}

/** BatchNormalization at inference folded into x * s + t per channel (s = gamma / sqrt(var + eps)). */
function batchNorm(g: OnnxGraphBuilder, x: string, layer: Layer, w: Map<string, Weight>, eps: number, nchw: boolean): string {
  const mean = w.get('moving_mean')!.data;
  const variance = w.get('moving_variance')!.data;
  const gamma = w.get('gamma')?.data;
  const beta = w.get('beta')?.data;
  const c = mean.length;
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    scale[i] = (gamma ? gamma[i] : 1) / Math.sqrt(variance[i] + eps);
    shift[i] = (beta ? beta[i] : 0) - mean[i] * scale[i];
  }
  const dims = nchw ? [c, 1, 1] : [c];
  const [y] = g.addNode('Mul', [x, g.addFloats(`${layer.name}/scale`, scale, dims)], 1);
  return g.addNode('Add', [y, g.addFloats(`${layer.name}/shift`, shift, dims)], 1)[0];
}

interface Weight {
  data: Float32Array;
  shape: number[];
}

/** Smallest normal float32; anything smaller in magnitude is a denormal. */
const FLT_MIN = 1.1754943508222875e-38;

/**
 * A layer's weights keyed by their short name (kernel, bias, gamma, moving_mean, ...), with
 * denormals flushed to 0. Weight decay leaves the weights of never-varying inputs (the digits'
 * always-blank border pixels) denormal; each product with a non-zero input is then a slow
 * microcode assist on x86 (the digits MLP's fp32 first Gemm ran 5x slower on such inputs).
 * Their contribution is below 1e-35.
 */
function weightsOf(layer: Layer): Map<string, Weight> {
  const out = new Map<string, Weight>();
  for (const v of layer.weights) {
    const t = v.read();
    const data = Float32Array.from(t.dataSync() as Float32Array, (x) => (Math.abs(x) < FLT_MIN ? 0 : x));
    out.set(v.originalName.split('/').pop()!, { data, shape: t.shape });
  }
  return out;
}

/** tfjs conv kernel [kh, kw, in, out] to ONNX [out, in, kh, kw]. */
function transposeKernel(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o];
  return out;
}

/**
 * Explicit ONNX pads [top, left, bottom, right] for TF's 'valid' / 'same' padding; TF puts the
 * odd extra cell at the end. Computed from the static input size, not auto_pad, so the
 * result does not depend on how a runtime interprets SAME_UPPER.
 */
function pads(layer: Layer, kernel: number[], cfg: Record<string, unknown>): number[] {
  if (cfg.padding === 'valid') return [0, 0, 0, 0];
  if (cfg.padding !== 'same') throw new Error(`exportToOnnx: padding '${String(cfg.padding)}' of '${layer.name}' is not supported`);
  const inShape = inputShapeOf(layer);
  const strides = cfg.strides as number[];
  const dil = (cfg.dilationRate as number[] | undefined) ?? [1, 1];
  const begin: number[] = [];
  const end: number[] = [];
  for (let d = 0; d < 2; d++) {
    const size = inShape[d + 1];
    if (size === null) throw new Error(`exportToOnnx: '${layer.name}' needs a static spatial size for 'same' padding`);
    const out = Math.ceil(size / strides[d]);
    const total = Math.max((out - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 - size, 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  }
  return [...begin, ...end];
}

/** softmax and logSoftmax normalise over the channels; every other activation is elementwise. */
function isElementwise(activationName: string): boolean {
  return activationName !== 'softmax' && activationName !== 'logSoftmax';
}

/** Largest unrolled ('dense') int8 convolution matrix, in weights (= bytes in the model). */
const DENSE_CONV_MAX_WEIGHTS = 1 << 20;
/**
 * What copying one im2col block (one input cell's channels) in onnxruntime's Gather costs, in
 * multiply-adds of its int8 GEMM: about 3.5 ns per block against some 400 G multiply-adds/s on
 * one AVX-512 VNNI core; 2048 puts the switch between 6x6 and 8x8 images of 16 -> 32 channels,
 * as measured.
 */
const GATHER_BLOCK_MACS = 2048;

/**
 * 'im2col' convolutions with fewer channel pairs (cin*cout) than this stay float32: their
 * Gather (one small block per tap and output cell) costs more than the GEMM saves (16x16x3 ->
 * 16 channels: 0.5x fp32 at batch 32; 8x8x16 -> 32: 1.0x).
 */
const MIN_IM2COL_CHANNEL_PAIRS = 1024;

/**
 * How an int8-mode Conv2D runs: 'dense' or 'im2col' (see quantizedConv2d), whichever should be
 * faster per output cell ('dense' costs inH*inW*cin*cout multiply-adds, 'im2col' kh*kw*cin*cout
 * plus kh*kw gathered blocks), or undefined to keep it float32 (too shallow, see
 * ExportOnnxOptions.minInt8ConvDepth, or an 'im2col' with too few channels to pay for its
 * Gather). Measured at batch 32, one layer alone: 6x6x16 -> 32 channels, 'dense' 1.7x fp32,
 * 'im2col' 1.1x; 8x8x16 -> 32, 'dense' 0.7x, 'im2col' 1.0x.
 */
export function int8ConvLowering(c: ConvGeometry, opts: Pick<ExportOnnxOptions, 'minInt8ConvDepth' | 'int8ConvLowering'> = {}): ConvLowering | undefined {
  const taps = c.kh * c.kw;
  // The lowerings are built for one static image size.
  if (![c.inH, c.inW, c.outH, c.outW].every(Number.isInteger)) return undefined;
  if (taps * c.cin < (opts.minInt8ConvDepth ?? DEFAULT_MIN_INT8_CONV_DEPTH)) return undefined;
  if (opts.int8ConvLowering && opts.int8ConvLowering !== 'auto') return opts.int8ConvLowering;
  const unrolled = c.inH * c.inW * c.cin * c.outH * c.outW * c.cout;
  if (unrolled <= DENSE_CONV_MAX_WEIGHTS && c.inH * c.inW * c.cin * c.cout <= taps * (c.cin * c.cout + GATHER_BLOCK_MACS)) return 'dense';
  return c.cin * c.cout >= MIN_IM2COL_CHANNEL_PAIRS ? 'im2col' : undefined;
}

/** Static geometry of a Conv2D layer (TF semantics, explicit pads). */
function convGeometry(layer: Layer): ConvGeometry {
  const cfg = layer.getConfig() as Record<string, unknown>;
  const [kh, kw] = cfg.kernelSize as number[];
  const [, inH, inW, cin] = inputShapeOf(layer) as number[];
  const [, outH, outW, cout] = outShape(layer) as number[];
  const strides = cfg.strides as [number, number];
  const dilations = ((cfg.dilationRate as number[] | undefined) ?? [1, 1]) as [number, number];
  return { inH, inW, cin, kh, kw, cout, strides, dilations, pads: pads(layer, [kh, kw], cfg), outH, outW };
}

/** Output size and explicit pads of a pooling layer. */
function poolGeometry(layer: Layer): PoolGeometry {
  const cfg = layer.getConfig() as Record<string, unknown>;
  const [poolH, poolW] = cfg.poolSize as number[];
  const [, outH, outW] = outShape(layer) as number[];
  return { poolH, poolW, strides: cfg.strides as [number, number], pads: pads(layer, [poolH, poolW], cfg), outH, outW };
}

/**
 * The MaxPooling2D right after the conv layers[index] (only inference no-ops in between), if
 * its windows do not overlap: folded into the int8 convolution, it then costs no extra
 * compute (see quantizedConv2d). Overlapping windows would recompute conv outputs.
 */
function foldableMaxPool(layers: Layer[], index: number): { layer: Layer; geometry: PoolGeometry } | undefined {
  let next = index + 1;
  while (next < layers.length && INFERENCE_NO_OPS.has(layers[next].getClassName())) next++;
  const layer = layers[next];
  if (layer?.getClassName() !== 'MaxPooling2D') return undefined;
  const geometry = poolGeometry(layer);
  if ((layer.getConfig() as Record<string, unknown>).dataFormat !== 'channelsLast' || geometry.strides[0] < geometry.poolH || geometry.strides[1] < geometry.poolW) return undefined;
  return { layer, geometry };
}

function inputShapeOf(layer: Layer): Shape {
  const input = layer.input;
  if (Array.isArray(input)) throw new Error(`exportToOnnx: layer '${layer.name}' has several inputs`);
  return input.shape;
}

function outShape(layer: Layer): Shape {
  return layer.outputShape as Shape;
}

function onnxShape(shape: Shape): (number | string)[] {
  return shape.map((d, i) => (i === 0 ? 'batch' : (d ?? `d${i}`)));
}

/** Every layer must consume exactly the previous layer's output: no branches, no merges. */
function checkLinearChain(layers: Layer[]): void {
  for (let i = 1; i < layers.length; i++) {
    if (layers[i].input !== layers[i - 1].output) throw new Error(`exportToOnnx: layer '${layers[i].name}' does not follow '${layers[i - 1].name}'; only sequential chains are supported`);
  }
}
