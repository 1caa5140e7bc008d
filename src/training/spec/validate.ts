import { promises as fs } from 'node:fs';
import type { z } from 'zod';
import { EdgeloopError } from '../../errors.js';
import { CLASSIFICATION_LOSSES, LAYER_TYPES, layerSchema, modelSpecSchema, REGRESSION_LOSSES, type LayerSpec, type ModelSpec } from './schema.js';

const specError = (message: string): EdgeloopError => new EdgeloopError('EDGELOOP_SPEC_INVALID', message);

function issues(error: z.ZodError, prefix: string): string {
  return error.issues
    .map((i) => {
      const at = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
      return `'${at || '(root)'}' ${i.message}`;
    })
    .join('; ');
}

/** Validate a spec object; every problem is an EDGELOOP_SPEC_INVALID naming the field. */
export function parseModelSpec(raw: unknown, where: string): ModelSpec {
  const result = modelSpecSchema.safeParse(raw);
  if (!result.success) throw specError(`${where}: ${issues(result.error, '')}`);
  const layers: LayerSpec[] = result.data.layers.map((layer, i) => {
    const type = (layer as { type?: unknown } | null)?.type;
    if (typeof type !== 'string') throw specError(`${where}: 'layers.${i}' needs a 'type' (one of ${LAYER_TYPES.join(', ')})`);
    if (!(LAYER_TYPES as readonly string[]).includes(type)) throw specError(`${where}: 'layers.${i}' has unknown layer type '${type}'; supported: ${LAYER_TYPES.join(', ')}`);
    const parsed = layerSchema.safeParse(layer);
    if (!parsed.success) throw specError(`${where}: ${issues(parsed.error, `layers.${i}`)}`);
    return parsed.data;
  });
  const spec: ModelSpec = { ...result.data, layers };
  const losses: readonly string[] = spec.task === 'classification' ? CLASSIFICATION_LOSSES : REGRESSION_LOSSES;
  if (spec.loss && !losses.includes(spec.loss)) throw specError(`${where}: 'loss' ${spec.loss} does not fit a ${spec.task} model; use ${losses.join(' or ')}`);
  const monitor = spec.training.earlyStopping?.monitor;
  if (monitor === 'val_accuracy' && spec.task !== 'classification') throw specError(`${where}: 'training.earlyStopping.monitor' val_accuracy needs a classification model`);
  if (monitor === 'val_mae' && spec.task !== 'regression') throw specError(`${where}: 'training.earlyStopping.monitor' val_mae needs a regression model`);
  return spec;
}

/** Read and validate a spec file. */
export async function readModelSpec(file: string): Promise<ModelSpec> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw specError(code === 'ENOENT' ? `${file}: no such spec file` : `${file}: cannot read (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw specError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelSpec(raw, file);
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);
const fmt = (shape: readonly number[]): string => shape.join('x');

/** Output size of a window (conv kernel or pool) along one axis, as TensorFlow computes it. */
function windowOut(size: number, k: number, s: number, padding: 'valid' | 'same'): number {
  return padding === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
}

/**
 * Check the stack's shapes before building anything, so impossible specs fail with a message
 * that names the layer: per-row shapes (no batch axis) flow from the input to the output
 * layer. Returns the per-row shape after each layer.
 */
export function inferShapes(spec: ModelSpec, features: number, where: string): number[][] {
  const input = spec.inputShape ?? [features];
  const inputSize = input.reduce((a, b) => a * b, 1);
  if (inputSize !== features) throw specError(`${where}: 'inputShape' [${input.join(', ')}] holds ${inputSize} values per row but the data has ${features} features`);
  const shapes: number[][] = [];
  let cur = input;
  spec.layers.forEach((layer, i) => {
    const at = `${where}: 'layers.${i}' (${layer.type})`;
    switch (layer.type) {
      case 'dense':
        if (cur.length !== 1) throw specError(`${at} needs a flat input but gets ${fmt(cur)}; add a flatten layer before it`);
        cur = [layer.units];
        break;
      case 'conv2d':
      case 'maxPooling2d':
      case 'averagePooling2d': {
        if (cur.length !== 3) throw specError(`${at} needs an image input (height x width x channels) but gets ${fmt(cur)}; set 'inputShape' (e.g. [8, 8, 1]) or add a reshape layer`);
        const [k, s, padding]: [[number, number], [number, number], 'valid' | 'same'] =
          layer.type === 'conv2d'
            ? [pair(layer.kernelSize, 1), pair(layer.strides, 1), layer.padding ?? 'valid']
            : [pair(layer.poolSize, 2), pair(layer.strides ?? layer.poolSize, 2), layer.padding ?? 'valid'];
        const h = windowOut(cur[0], k[0], s[0], padding);
        const w = windowOut(cur[1], k[1], s[1], padding);
        const what = layer.type === 'conv2d' ? 'kernel' : 'pool';
        if (h < 1 || w < 1) throw specError(`${at}: impossible shape: a ${k[0]}x${k[1]} ${what} does not fit the ${fmt(cur)} input with '${padding}' padding`);
        cur = [h, w, layer.type === 'conv2d' ? layer.filters : cur[2]];
        break;
      }
      case 'flatten':
        cur = [cur.reduce((a, b) => a * b, 1)];
        break;
      case 'reshape': {
        const size = cur.reduce((a, b) => a * b, 1);
        const target = layer.targetShape.reduce((a, b) => a * b, 1);
        if (size !== target) throw specError(`${at}: impossible shape: [${layer.targetShape.join(', ')}] holds ${target} values but its input ${fmt(cur)} has ${size}`);
        cur = [...layer.targetShape];
        break;
      }
      case 'dropout':
      case 'batchNormalization':
      case 'activation':
        break;
    }
    shapes.push(cur);
  });
  if (cur.length !== 1) throw specError(`${where}: the output layer needs a flat input but the last layer gives ${fmt(cur)}; end the stack with a flatten layer`);
  return shapes;
}
