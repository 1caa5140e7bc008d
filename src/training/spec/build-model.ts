import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { EdgeloopError } from '../../errors.js';
import type { LayerSpec, ModelSpec } from './schema.js';

/** The model the trainer fits and the one it ships (they share layers and weights). */
export interface BuiltModel {
  /** The complete model, as exported and served: its output is in the target's units. */
  model: tfl.LayersModel;
  /** The part that is fitted: for regression, everything before the fixed target-scale layer. */
  trainable: tfl.LayersModel;
}

export interface BuildOptions {
  /** Values per row of the data (the flattened input size). */
  features: number;
  /** Classes (classification) or 1 (regression). */
  outputUnits: number;
  /** Regression: the model learns the standardised target; a fixed last layer maps it back. */
  targetScale?: { mean: number; std: number };
  /** Model name (tfjs names must be identifiers). */
  name?: string;
}

/** Name of the fixed layer that maps a regression output back to target units. */
export const TARGET_SCALE_LAYER = 'target_scale';

/**
 * Build the tfjs Sequential model a spec describes: an InputLayer of the spec's `inputShape`,
 * the hidden stack with seeded initialisers, and the output layer. For regression a frozen
 * Dense(1) (kernel = target std, bias = target mean) follows the output, so training runs on
 * a standardised target while the exported model answers in the target's own units.
 */
export function buildModel(spec: ModelSpec, opts: BuildOptions): BuiltModel {
  const seed = spec.seed;
  const init = (i: number) => tfl.initializers.glorotUniform({ seed: seed * 101 + i });
  const reg = (l: { l1?: number; l2?: number }) => {
    const l1 = l.l1 ?? spec.regularization.l1 ?? 0;
    const l2 = l.l2 ?? spec.regularization.l2 ?? 0;
    return l1 > 0 || l2 > 0 ? tfl.regularizers.l1l2({ l1, l2 }) : undefined;
  };
  const layers: tfl.layers.Layer[] = [tfl.layers.inputLayer({ inputShape: spec.inputShape ?? [opts.features], name: 'input' })];
  spec.layers.forEach((l, i) => layers.push(hiddenLayer(l, `${l.type.toLowerCase()}_${i}`, init(i), reg, seed + i)));
  const outputActivation = spec.output.activation ?? (spec.task === 'classification' ? 'softmax' : 'linear');
  layers.push(tfl.layers.dense({ units: opts.outputUnits, activation: outputActivation, kernelInitializer: init(spec.layers.length), name: 'output' }));
  if (opts.targetScale) {
    layers.push(
      tfl.layers.dense({
        units: 1,
        name: TARGET_SCALE_LAYER,
        trainable: false,
        kernelInitializer: tfl.initializers.constant({ value: opts.targetScale.std }),
        biasInitializer: tfl.initializers.constant({ value: opts.targetScale.mean }),
      }),
    );
  }
  let model: tfl.Sequential;
  try {
    model = tfl.sequential({ layers, name: opts.name ?? 'model' });
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_SPEC_INVALID', `the spec does not build a model: ${(err as Error).message}`);
  }
  const trainable = opts.targetScale ? tfl.model({ inputs: model.inputs, outputs: model.getLayer('output').output as tfl.SymbolicTensor }) : model;
  return { model, trainable };
}

function hiddenLayer(l: LayerSpec, name: string, kernelInitializer: ReturnType<typeof tfl.initializers.glorotUniform>, reg: (l: { l1?: number; l2?: number }) => ReturnType<typeof tfl.regularizers.l1l2> | undefined, seed: number): tfl.layers.Layer {
  switch (l.type) {
    case 'dense':
      return tfl.layers.dense({ name, units: l.units, activation: l.activation ?? 'linear', useBias: l.useBias ?? true, kernelInitializer, kernelRegularizer: reg(l) });
    case 'dropout':
      return tfl.layers.dropout({ name, rate: l.rate, seed });
    case 'conv2d':
      return tfl.layers.conv2d({
        name,
        filters: l.filters,
        kernelSize: l.kernelSize,
        strides: l.strides ?? 1,
        padding: l.padding ?? 'valid',
        activation: l.activation ?? 'linear',
        useBias: l.useBias ?? true,
        kernelInitializer,
        kernelRegularizer: reg(l),
        dataFormat: 'channelsLast',
      });
    case 'maxPooling2d':
      return tfl.layers.maxPooling2d({ name, poolSize: l.poolSize ?? 2, strides: l.strides, padding: l.padding ?? 'valid', dataFormat: 'channelsLast' });
    case 'averagePooling2d':
      return tfl.layers.averagePooling2d({ name, poolSize: l.poolSize ?? 2, strides: l.strides, padding: l.padding ?? 'valid', dataFormat: 'channelsLast' });
    case 'flatten':
      return tfl.layers.flatten({ name });
    case 'batchNormalization':
      return tfl.layers.batchNormalization({ name, momentum: l.momentum ?? 0.99, epsilon: l.epsilon ?? 1e-3 });
    case 'activation':
      return tfl.layers.activation({ name, activation: l.activation });
    case 'reshape':
      return tfl.layers.reshape({ name, targetShape: l.targetShape });
  }
}

/** The optimizer a spec names, with its learning rate (defaults: adam/rmsprop 0.001, sgd 0.01). */
export function buildOptimizer(spec: ModelSpec): tf.Optimizer {
  const o = spec.optimizer;
  switch (o.type) {
    case 'sgd':
      return o.momentum ? tf.train.momentum(o.learningRate ?? 0.01, o.momentum) : tf.train.sgd(o.learningRate ?? 0.01);
    case 'rmsprop':
      return tf.train.rmsprop(o.learningRate ?? 0.001, 0.9, o.momentum ?? 0);
    case 'adam':
      return tf.train.adam(o.learningRate ?? 0.001);
  }
}

/** Compile the trainable part: the spec's loss (default cross-entropy / MSE) and accuracy for classifiers. */
export function compileModel(built: BuiltModel, spec: ModelSpec): void {
  const loss = spec.loss ?? (spec.task === 'classification' ? 'categoricalCrossentropy' : 'meanSquaredError');
  built.trainable.compile({ optimizer: buildOptimizer(spec), loss, metrics: spec.task === 'classification' ? ['accuracy'] : [] });
}

/** One line per layer: what the spec builds, for logs and bundle metadata. */
export function describeArchitecture(spec: ModelSpec, outputUnits: number): string {
  const parts = spec.layers.map((l) => {
    switch (l.type) {
      case 'dense':
        return `dense ${l.units}${l.activation && l.activation !== 'linear' ? ` ${l.activation}` : ''}`;
      case 'conv2d': {
        const k = typeof l.kernelSize === 'number' ? `${l.kernelSize}x${l.kernelSize}` : l.kernelSize.join('x');
        return `conv2d ${l.filters}@${k}${l.activation && l.activation !== 'linear' ? ` ${l.activation}` : ''}`;
      }
      case 'dropout':
        return `dropout ${l.rate}`;
      case 'activation':
        return l.activation;
      case 'reshape':
        return `reshape ${l.targetShape.join('x')}`;
      default:
        return l.type;
    }
  });
  const input = spec.inputShape ? [`input ${spec.inputShape.join('x')}`] : [];
  const out = `dense ${outputUnits} ${spec.output.activation ?? (spec.task === 'classification' ? 'softmax' : 'linear')}`;
  return [...input, ...parts, out].join(' - ');
}
