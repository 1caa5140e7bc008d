import { z } from '../util/zod.js';

/** Version of the bundle format this code reads and writes. */
export const BUNDLE_FORMAT = 'edgeloop-bundle/1';
export const MANIFEST_FILE = 'bundle.json';

/** Every ONNX Runtime tensor type (`string`: OIP BYTES). float16 travels as its raw 16-bit patterns. */
export const DTYPES = ['float32', 'float64', 'float16', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string'] as const;
export type Dtype = (typeof DTYPES)[number];

/** A tensor's name, dtype and shape; -1 (or a string in ONNX) marks a dynamic dimension; [] is a scalar. */
export const tensorSpecSchema = z.object({
  name: z.string().min(1),
  dtype: z.enum(DTYPES),
  shape: z.array(z.number().int().min(-1)),
});
export type TensorSpec = z.infer<typeof tensorSpecSchema>;

export const artifactSchema = z.object({
  path: z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), 'must stay inside the bundle'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
});
export type Artifact = z.infer<typeof artifactSchema>;

export const preprocessingSchema = z
  .object({
    /** (x - mean) / std per feature, applied by the daemon before inference. */
    standardize: z
      .object({ mean: z.array(z.number()), std: z.array(z.number()) })
      .refine((s) => s.mean.length === s.std.length, 'mean and std must have the same length')
      .optional(),
  })
  .default({});

export const manifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lower-case letters, digits, . _ - (max 64)'),
  version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/),
  runtime: z.enum(['onnx', 'tfjs']),
  task: z.enum(['classification', 'regression', 'embedding']),
  /** The file the engine loads: model.onnx or model.json. */
  entry: z.string().min(1),
  artifacts: z.array(artifactSchema).min(1),
  /** Empty only for a model that takes nothing (a constant or a generator), served as tensors. */
  inputs: z.array(tensorSpecSchema),
  outputs: z.array(tensorSpecSchema).min(1),
  /** Class names for classifiers, in output order. */
  labels: z.array(z.string()).optional(),
  /** Whether the classifier's first output is probabilities, logits to softmax, or 'auto' (softmax unless rows already sum to 1). */
  outputKind: z.enum(['probabilities', 'logits', 'auto']).default('probabilities'),
  preprocessing: preprocessingSchema,
  /** int8 / uint8 / float16 / float32: how the weights are stored. */
  quantization: z.enum(['float32', 'float16', 'uint8', 'int8']).default('float32'),
  description: z.string().optional(),
  createdAt: z.string().optional(),
  /** Filled by the toolchain and the drift monitor (later issues). */
  reference: z.unknown().optional(),
  training: z.unknown().optional(),
  /** A trainable float32 source the bundle carries (an artifact), so on-device fine-tuning can start from it and re-export this variant. */
  trainable: z.object({ entry: z.string().min(1), runtime: z.literal('tfjs') }).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestInput = z.input<typeof manifestSchema>;

/**
 * Feature count per row of a tensor spec (product of the non-batch dimensions; 1 for a scalar).
 * A spec that is not rows (a dynamic non-batch dimension) has 0: row requests cannot feed it,
 * tensor requests (OIP) can.
 */
export function rowSize(spec: TensorSpec): number {
  let n = 1;
  for (const d of spec.shape.slice(1)) {
    if (d < 0) return 0;
    n *= d;
  }
  return n;
}

/** True when a model's inputs are all rows: a dynamic first dimension and fixed others. */
export function isRowShaped(spec: TensorSpec): boolean {
  return spec.shape.length >= 1 && spec.shape.slice(1).every((d) => d >= 0);
}

/** All problems of a zod error, one per line, naming the field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `'${i.path.join('.') || '(root)'}' ${i.message}`).join('; ');
}
