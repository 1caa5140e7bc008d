import type { LayersModel } from '@tensorflow/tfjs-layers';
import { floatAttr, type OnnxGraphBuilder } from './onnx-writer.js';

type Layer = LayersModel['layers'][number];

// tfjs's selu constants; ONNX Selu's defaults are rounded to 6 digits, so they are passed.
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

/** Activations whose every output is >= 0 (softplus and sigmoid can round to exactly 0). */
const NON_NEGATIVE = new Set(['relu', 'relu6', 'sigmoid', 'hardSigmoid', 'softmax', 'softplus']);

/** Whether the tfjs activation `name` only ever outputs values >= 0. */
export function isNonNegative(name: string): boolean {
  return NON_NEGATIVE.has(name);
}

/**
 * Append the ONNX equivalent of a tfjs activation (by its serialised name, e.g. 'relu') and
 * return the output tensor name. Softmax runs over the channel axis, which is axis 1 while the
 * tensor is NCHW. Throws naming the layer for an activation with no mapping.
 */
export function activation(g: OnnxGraphBuilder, x: string, name: string, layer: Layer, nchw: boolean): string {
  const one = (op: string, attrs = {}): string => g.addNode(op, [x], 1, attrs)[0];
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return one('Relu');
    case 'relu6':
      return g.addNode('Clip', [x, g.addFloats('zero', [0], []), g.addFloats('six', [6], [])], 1)[0];
    case 'sigmoid':
      return one('Sigmoid');
    case 'hardSigmoid':
      return one('HardSigmoid', { alpha: floatAttr(0.2), beta: floatAttr(0.5) });
    case 'tanh':
      return one('Tanh');
    case 'softmax':
      return one('Softmax', { axis: nchw ? 1 : -1 });
    case 'logSoftmax':
      return one('LogSoftmax', { axis: nchw ? 1 : -1 });
    case 'elu':
      return one('Elu', { alpha: floatAttr(1) });
    case 'selu':
      return one('Selu', { alpha: floatAttr(SELU_ALPHA), gamma: floatAttr(SELU_SCALE) });
    case 'softplus':
      return one('Softplus');
    case 'softsign':
      return one('Softsign');
    case 'swish':
      return g.addNode('Mul', [x, one('Sigmoid')], 1)[0];
    default:
      throw new Error(`exportToOnnx: unsupported activation '${name}' in layer ${layer.getClassName()} ('${layer.name}')`);
  }
}
