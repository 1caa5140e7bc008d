import type { LayersModel } from '@tensorflow/tfjs-layers';
import { activation, isNonNegative } from './activations.js';
import { OnnxGraphBuilder } from './onnx-writer.js';
import type { WeightType } from './quantize.js';
import { quantizedLinear } from './quantized-linear.js';

/** Options of {@link exportToOnnx}. */
export interface ExportOnnxOptions {
  /**
   * 'int8': Dense and Conv2D run as MatMulInteger / ConvInteger with per-channel int8 weights and
   * activations quantized per row at run time, so a row's result does not depend on its batch
   * (see quantizedLinear); everything else stays float32.
   */
  quantize: 'float32' | 'int8';
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
}

type Layer = LayersModel['layers'][number];
type Shape = (number | null)[];

/** Layers that only matter during training. */
const INFERENCE_NO_OPS = new Set(['Dropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'InputLayer']);

/**
 * Export a single-input, single-output chain of tfjs layers (a Sequential model) to ONNX
 * (opset 17). tfjs is channels-last (NHWC) and ONNX Conv/Pool are NCHW: 4-D tensors are
 * transposed lazily, only when the next layer needs the other layout, so Flatten and Reshape
 * always see NHWC and flatten in the same order as tfjs. Throws naming any unsupported layer.
 */
export function exportToOnnx(model: LayersModel, opts: ExportOnnxOptions): Uint8Array {
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'probabilities';
  const int8 = opts.quantize === 'int8';
  const weightType = opts.weightType ?? 'int8';
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('exportToOnnx: only single-input, single-output models are supported');

  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  checkLinearChain(layers);
  const denseLayers = layers.filter((l) => l.getClassName() === 'Dense');
  if (opts.embeddingOutput && denseLayers.length < 2) throw new Error('exportToOnnx: embeddingOutput needs at least two Dense layers');
  const embeddingLayer = opts.embeddingOutput ? denseLayers[denseLayers.length - 2] : undefined;

  const g = new OnnxGraphBuilder(model.name);
  const inShape = model.inputs[0].shape;
  let cur = g.addInput({ name: inputName, elemType: 'float32', shape: onnxShape(inShape) });
  g.addOutput({ name: outputName, elemType: 'float32', shape: onnxShape(model.outputs[0].shape) });
  if (embeddingLayer) g.addOutput({ name: 'embedding', elemType: 'float32', shape: onnxShape(outShape(embeddingLayer)) });

  // True while the current 4-D tensor is NCHW (ONNX layout) rather than NHWC (tfjs layout).
  let nchw = false;
  const toNchw = (): void => {
    if (!nchw) [cur] = g.addNode('Transpose', [cur], 1, { perm: [0, 3, 1, 2] });
    nchw = true;
  };
  const toNhwc = (): void => {
    if (nchw) [cur] = g.addNode('Transpose', [cur], 1, { perm: [0, 2, 3, 1] });
    nchw = false;
  };

  // True while every value of the current tensor is known to be >= 0 (e.g. after a relu): its
  // per-row int8 quantization then needs no zero point.
  let nonNegative = false;
  for (const layer of layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Record<string, unknown>;
    const w = weightsOf(layer);
    const rankIn = inputShapeOf(layer).length;
    if (INFERENCE_NO_OPS.has(cls)) continue;
    switch (cls) {
      case 'Dense': {
        if (rankIn !== 2) throw new Error(`exportToOnnx: Dense layer '${layer.name}' on a rank-${rankIn} input is not supported (add a Flatten)`);
        const kernel = w.get('kernel')!;
        const bias = w.get('bias');
        const [nIn, nOut] = kernel.shape;
        if (int8) {
          const spec = { op: 'MatMulInteger', name: layer.name, weights: kernel.data, dims: [nIn, nOut], channels: nOut, channelOf: (i: number) => i % nOut, channelShape: [nOut], bias: bias?.data, weightType, attrs: {} } as const;
          cur = quantizedLinear(g, cur, spec, nonNegative);
        } else {
          const W = g.addFloats(`${layer.name}/kernel`, kernel.data, [nIn, nOut]);
          const inputs = bias ? [cur, W, g.addFloats(`${layer.name}/bias`, bias.data)] : [cur, W];
          [cur] = g.addNode('Gemm', inputs, 1);
        }
        cur = activation(g, cur, String(cfg.activation ?? 'linear'), layer, nchw);
        nonNegative = isNonNegative(String(cfg.activation ?? 'linear'));
        if (layer === embeddingLayer) g.addNode('Identity', [cur], ['embedding']);
        break;
      }
      case 'Conv2D': {
        if (cfg.dataFormat !== 'channelsLast' || rankIn !== 4) throw new Error(`exportToOnnx: Conv2D layer '${layer.name}' must be channelsLast on a 4-D input`);
        toNchw();
        const kernel = w.get('kernel')!;
        const [kh, kw, cin, cout] = kernel.shape;
        const wOnnx = transposeKernel(kernel.data, kh, kw, cin, cout);
        const attrs = { kernel_shape: [kh, kw], strides: cfg.strides as number[], dilations: cfg.dilationRate as number[], pads: pads(layer, [kh, kw], cfg) };
        const bias = w.get('bias');
        if (int8) {
          const per = cin * kh * kw;
          const spec = { op: 'ConvInteger', name: layer.name, weights: wOnnx, dims: [cout, cin, kh, kw], channels: cout, channelOf: (i: number) => Math.floor(i / per), channelShape: [cout, 1, 1], bias: bias?.data, weightType, attrs } as const;
          cur = quantizedLinear(g, cur, spec, nonNegative);
        } else {
          const W = g.addFloats(`${layer.name}/kernel`, wOnnx, [cout, cin, kh, kw]);
          const inputs = bias ? [cur, W, g.addFloats(`${layer.name}/bias`, bias.data)] : [cur, W];
          [cur] = g.addNode('Conv', inputs, 1, attrs);
        }
        cur = activation(g, cur, String(cfg.activation ?? 'linear'), layer, nchw);
        nonNegative = isNonNegative(String(cfg.activation ?? 'linear'));
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        if (cfg.dataFormat !== 'channelsLast' || rankIn !== 4) throw new Error(`exportToOnnx: ${cls} layer '${layer.name}' must be channelsLast on a 4-D input`);
        toNchw();
        const k = cfg.poolSize as number[];
        const attrs = { kernel_shape: k, strides: cfg.strides as number[], pads: pads(layer, k, cfg) };
        // TF's 'same' average pooling divides by the number of real (unpadded) cells.
        [cur] = cls === 'MaxPooling2D' ? g.addNode('MaxPool', [cur], 1, attrs) : g.addNode('AveragePool', [cur], 1, { ...attrs, count_include_pad: 0 });
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        if (rankIn !== 4) throw new Error(`exportToOnnx: ${cls} layer '${layer.name}' needs a 4-D input`);
        toNchw();
        [cur] = g.addNode(cls === 'GlobalMaxPooling2D' ? 'GlobalMaxPool' : 'GlobalAveragePool', [cur], 1);
        [cur] = g.addNode('Flatten', [cur], 1, { axis: 1 });
        nchw = false;
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== rankIn - 1) throw new Error(`exportToOnnx: BatchNormalization layer '${layer.name}' must normalise the last axis`);
        cur = batchNorm(g, cur, layer, w, Number(cfg.epsilon), nchw);
        nonNegative = false;
        break;
      }
      case 'Activation':
        cur = activation(g, cur, String(cfg.activation), layer, nchw);
        nonNegative = isNonNegative(String(cfg.activation)) || (nonNegative && cfg.activation === 'linear');
        break;
      case 'Reshape': {
        toNhwc();
        const target = cfg.targetShape as number[];
        [cur] = g.addNode('Reshape', [cur, g.addInt64s(`${layer.name}/shape`, [0, ...target])], 1);
        break;
      }
      case 'Flatten':
        toNhwc();
        if (rankIn !== 2) [cur] = g.addNode('Flatten', [cur], 1, { axis: 1 });
        break;
      default:
        throw new Error(`exportToOnnx: unsupported layer ${cls} ('${layer.name}')`);
    }
  }
  toNhwc();
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

/** A layer's weights keyed by their short name (kernel, bias, gamma, moving_mean, ...). */
function weightsOf(layer: Layer): Map<string, Weight> {
  const out = new Map<string, Weight>();
  for (const v of layer.weights) {
    const t = v.read();
    out.set(v.originalName.split('/').pop()!, { data: Float32Array.from(t.dataSync() as Float32Array), shape: t.shape });
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
