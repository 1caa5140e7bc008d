import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

type Layer = LayersModel['layers'][number];

/**
 * Rows the static int8 exporter calibrates its activation ranges on: `count` rows of the
 * model's input, flattened (e.g. the training split, already standardised as the model sees it).
 */
export interface CalibrationData {
  rows: Float32Array;
  count: number;
}

/**
 * How a tensor's quantization range is taken from its calibration values:
 * - 'minmax': the smallest and largest value seen;
 * - 'percentile': the `percentile`-th and (100 - `percentile`)-th percentiles of all its
 *   values (over rows and positions), so a few outliers do not coarsen every other value;
 *   values beyond saturate.
 */
export interface CalibrationMethod {
  method: 'minmax' | 'percentile';
  /** 'percentile' only: e.g. 99.99. */
  percentile?: number;
}

/** A float tensor's calibrated range. */
export interface TensorRange {
  min: number;
  max: number;
}

/** Calibrated ranges around one layer (over all calibration rows and positions). */
export interface LayerRanges {
  /** Its input. */
  input: TensorRange;
  /** Its output, after the activation. */
  output: TensorRange;
  /** Dense / Conv2D whose activation is not linear: the output before the activation. */
  linear?: TensorRange;
}

/** Values kept per tensor for the percentile (an even subsample beyond this). */
const MAX_SAMPLES = 1 << 21;
/** Calibration rows run through tfjs at once. */
const CHUNK_ROWS = 256;

/** Running min/max and an even subsample of one tensor's values over the calibration rows. */
class RangeAccumulator {
  min = Infinity;
  max = -Infinity;
  private readonly samples: Float32Array[] = [];

  constructor(private readonly stride: number) {}

  add(values: Float32Array): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo;
    this.max = hi;
    if (this.stride === 1) this.samples.push(values.slice());
    else this.samples.push(Float32Array.from({ length: Math.ceil(values.length / this.stride) }, (_, i) => values[i * this.stride]));
  }

  range(m: CalibrationMethod): TensorRange {
    if (!Number.isFinite(this.min) || !Number.isFinite(this.max)) throw new Error('calibration: a non-finite activation (or no calibration rows)');
    if (m.method === 'minmax') return { min: this.min, max: this.max };
    const p = m.percentile ?? 99.99;
    if (!(p > 50 && p <= 100)) throw new Error(`calibration: percentile ${p} must be in (50, 100]`);
    const all = new Float32Array(this.samples.reduce((n, s) => n + s.length, 0));
    let at = 0;
    for (const s of this.samples) {
      all.set(s, at);
      at += s.length;
    }
    all.sort();
    const pick = (q: number) => all[Math.min(all.length - 1, Math.max(0, Math.round(q * (all.length - 1))))];
    return { min: pick(1 - p / 100), max: pick(p / 100) };
  }
}

/** The calibration method as recorded in a bundle, e.g. 'percentile 99.99' or 'minmax'. */
export function describeCalibration(m: CalibrationMethod): string {
  return m.method === 'minmax' ? 'minmax' : `percentile ${m.percentile ?? 99.99}`;
}

/**
 * Run the tfjs model layer by layer (inference mode: dropout off, batch normalisation on its
 * moving statistics) on the calibration rows and record, for every layer of `layers` (the
 * model's chain without its InputLayer), the range of its input and output, and for Dense and
 * Conv2D layers with an activation the range before that activation.
 */
export function calibrateRanges(model: LayersModel, layers: Layer[], data: CalibrationData, method: CalibrationMethod): Map<Layer, LayerRanges> {
  const inShape = model.inputs[0].shape.slice(1) as number[];
  const perRow = inShape.reduce((a, b) => a * b, 1);
  if (!(data.count > 0) || data.rows.length !== data.count * perRow) throw new Error(`calibration: ${data.rows.length} values for ${data.count} rows of ${perRow}`);
  const accumulator = (shape: readonly (number | null)[]) => {
    const size = (shape.slice(1) as number[]).reduce((a, b) => a * b, 1) * data.count;
    return new RangeAccumulator(Math.max(1, Math.ceil(size / MAX_SAMPLES)));
  };
  // tensors[0]: the model input; tensors[i + 1]: the output of layers[i].
  const tensors = [accumulator(model.inputs[0].shape), ...layers.map((l) => accumulator(l.outputShape as (number | null)[]))];
  const linear = new Map<Layer, RangeAccumulator>();
  for (const l of layers) if (preActivation(l)) linear.set(l, accumulator(l.outputShape as (number | null)[]));

  for (let start = 0; start < data.count; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, data.count - start);
    tf.tidy(() => {
      let x: tf.Tensor = tf.tensor(data.rows.subarray(start * perRow, (start + n) * perRow), [n, ...inShape]);
      tensors[0].add(x.dataSync() as Float32Array);
      layers.forEach((layer, i) => {
        const pre = linear.get(layer);
        if (pre) pre.add(preActivation(layer)!(x).dataSync() as Float32Array);
        x = layer.apply(x, { training: false }) as tf.Tensor;
        tensors[i + 1].add(x.dataSync() as Float32Array);
      });
    });
  }
  const out = new Map<Layer, LayerRanges>();
  layers.forEach((layer, i) => {
    const pre = linear.get(layer);
    out.set(layer, { input: tensors[i].range(method), output: tensors[i + 1].range(method), ...(pre ? { linear: pre.range(method) } : {}) });
  });
  return out;
}

/** For a Dense or Conv2D layer with a non-linear activation: its output before the activation. */
function preActivation(layer: Layer): ((x: tf.Tensor) => tf.Tensor) | undefined {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Record<string, unknown>;
  if ((cls !== 'Dense' && cls !== 'Conv2D') || (cfg.activation ?? 'linear') === 'linear') return undefined;
  const w = new Map(layer.weights.map((v) => [v.originalName.split('/').pop()!, v.read()]));
  const bias = w.get('bias');
  return (x) => {
    const y =
      cls === 'Dense'
        ? tf.matMul(x as tf.Tensor2D, w.get('kernel') as tf.Tensor2D)
        : tf.conv2d(x as tf.Tensor4D, w.get('kernel') as tf.Tensor4D, cfg.strides as [number, number], cfg.padding as 'same' | 'valid', 'NHWC', ((cfg.dilationRate as number[] | undefined) ?? [1, 1]) as [number, number]);
    return bias ? tf.add(y, bias) : y;
  };
}
