import { z } from '../../util/zod.js';

/** Activations the trainer builds and the ONNX exporter maps. */
export const ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hardSigmoid', 'tanh', 'softplus', 'softsign', 'swish', 'softmax'] as const;
const activation = z.enum(ACTIVATIONS);
const positiveInt = z.number().int().min(1);
const size2 = z.union([positiveInt, z.tuple([positiveInt, positiveInt])]);
const penalty = z.number().min(0).max(1);

const dense = z.strictObject({
  type: z.literal('dense'),
  units: positiveInt.max(65536),
  activation: activation.optional(),
  useBias: z.boolean().optional(),
  l1: penalty.optional(),
  l2: penalty.optional(),
});
const dropout = z.strictObject({ type: z.literal('dropout'), rate: z.number().min(0).lt(1) });
const conv2d = z.strictObject({
  type: z.literal('conv2d'),
  filters: positiveInt.max(4096),
  kernelSize: size2,
  strides: size2.optional(),
  padding: z.enum(['valid', 'same']).optional(),
  activation: activation.optional(),
  useBias: z.boolean().optional(),
  l1: penalty.optional(),
  l2: penalty.optional(),
});
const pooling = { poolSize: size2.optional(), strides: size2.optional(), padding: z.enum(['valid', 'same']).optional() };
const maxPooling2d = z.strictObject({ type: z.literal('maxPooling2d'), ...pooling });
const averagePooling2d = z.strictObject({ type: z.literal('averagePooling2d'), ...pooling });
const flatten = z.strictObject({ type: z.literal('flatten') });
const batchNormalization = z.strictObject({
  type: z.literal('batchNormalization'),
  momentum: z.number().gt(0).lt(1).optional(),
  epsilon: z.number().gt(0).optional(),
});
const activationLayer = z.strictObject({ type: z.literal('activation'), activation });
const reshape = z.strictObject({ type: z.literal('reshape'), targetShape: z.array(positiveInt).min(1).max(3) });

export const layerSchema = z.discriminatedUnion('type', [dense, dropout, conv2d, maxPooling2d, averagePooling2d, flatten, batchNormalization, activationLayer, reshape]);
export type LayerSpec = z.infer<typeof layerSchema>;
export const LAYER_TYPES = ['dense', 'dropout', 'conv2d', 'maxPooling2d', 'averagePooling2d', 'flatten', 'batchNormalization', 'activation', 'reshape'] as const;

export const CLASSIFICATION_LOSSES = ['categoricalCrossentropy'] as const;
export const REGRESSION_LOSSES = ['meanSquaredError', 'meanAbsoluteError'] as const;

/**
 * A model spec: a Sequential stack of hidden layers; the output layer (softmax over the classes,
 * or one linear unit for regression) is appended by the trainer.
 */
export const modelSpecSchema = z.strictObject({
  /** Free text shown in listings. */
  description: z.string().optional(),
  task: z.enum(['classification', 'regression']).default('classification'),
  /** Per-row input shape, e.g. [8, 8, 1] for 64 pixel columns; default: [number of features]. */
  inputShape: z.array(positiveInt).min(1).max(3).optional(),
  layers: z.array(z.unknown()).default([]),
  output: z.strictObject({ activation: activation.optional() }).default({}),
  optimizer: z
    .strictObject({
      type: z.enum(['adam', 'sgd', 'rmsprop']).default('adam'),
      learningRate: z.number().gt(0).max(10).optional(),
      /** sgd: classical momentum (0 = plain SGD); rmsprop: momentum term. */
      momentum: z.number().min(0).lt(1).optional(),
    })
    .prefault({}),
  loss: z.enum([...CLASSIFICATION_LOSSES, ...REGRESSION_LOSSES]).optional(),
  /** L1/L2 penalties on every dense and conv2d kernel that sets none itself. */
  regularization: z.strictObject({ l1: penalty.optional(), l2: penalty.optional() }).default({}),
  training: z
    .strictObject({
      epochs: positiveInt.max(100000).default(50),
      batchSize: positiveInt.max(65536).default(32),
      earlyStopping: z
        .strictObject({
          /** Epochs without improvement before stopping. */
          patience: z.number().int().min(0).default(5),
          monitor: z.enum(['val_loss', 'val_accuracy', 'val_mae']).default('val_loss'),
          minDelta: z.number().min(0).default(0),
          /** Keep the weights of the best epoch (default true). */
          restoreBest: z.boolean().default(true),
        })
        .optional(),
    })
    .prefault({}),
  /** Weight initialisation, dropout and shuffling seed (the split seed is separate). */
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
});

/** A validated spec whose `layers` are parsed too. */
export type ModelSpec = Omit<z.infer<typeof modelSpecSchema>, 'layers'> & { layers: LayerSpec[] };
export type ModelSpecInput = z.input<typeof modelSpecSchema>;
