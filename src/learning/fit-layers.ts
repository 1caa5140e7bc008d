import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { prng, shuffle } from '../training/data/split.js';
import type { EpochRecord } from '../training/trainer/index.js';
import type { FitRows } from './data.js';

/** Options of {@link fitLayers}. */
export interface FitLayersOptions {
  classes: number;
  epochs: number;
  learningRate: number;
  batchSize: number;
  /** Epochs without a better val_loss before stopping. */
  patience: number;
  seed: number;
  /**
   * After each epoch, pause this many times the epoch's own duration (0: none). A trainer that
   * holds a core without a break still costs the daemon beside it tail latency through what the
   * cores share (caches, memory bandwidth), even when it yields every time slice.
   */
  pauseRatio?: number;
  /** The model emits logits (softmax in the loss) instead of probabilities. */
  logits?: boolean;
  onEpoch?: (record: EpochRecord) => void;
  shouldStop?: () => boolean;
}

export interface FitLayersResult {
  history: EpochRecord[];
  epochsRun: number;
  /** 0 when no epoch beat the starting weights on val_loss (the parent's weights are kept). */
  bestEpoch: number;
}

/** Freeze all but the last `k` layers that have weights (k undefined: every layer trains). */
export function freezeAllButLast(model: tfl.LayersModel, k: number | undefined): number {
  const weighted = model.layers.filter((l) => l.getWeights().length > 0);
  weighted.forEach((l, i) => (l.trainable = k === undefined || i >= weighted.length - k));
  return weighted.filter((l) => l.trainable).length;
}

/**
 * Fine-tune a loaded LayersModel in place: Adam at a small learning rate, seeded shuffles,
 * val_loss after every epoch, patience, and the best weights restored. Epoch 0 (the weights
 * it starts from) competes too: when no epoch beats it, the model keeps its starting weights,
 * so noise-only feedback yields the parent back and the gate refuses it.
 */
export async function fitLayers(model: tfl.LayersModel, train: FitRows, val: FitRows, o: FitLayersOptions): Promise<FitLayersResult> {
  const loss = o.logits ? (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred) : 'categoricalCrossentropy';
  model.compile({ optimizer: tf.train.adam(o.learningRate), loss, metrics: ['accuracy'] });
  const shape = model.inputs[0].shape.slice(1) as number[];
  const tensors = (d: FitRows) =>
    tf.tidy(() => ({ x: tf.tensor(d.x, [d.rows, ...shape]), y: d.targets ? tf.tensor2d(d.targets, [d.rows, o.classes]) : (tf.cast(tf.oneHot(tf.tensor1d(Array.from(d.y), 'int32'), o.classes), 'float32') as tf.Tensor) }));
  const t = tensors(train);
  const v = tensors(val);
  const evaluate = (): { val_loss: number; val_accuracy: number } =>
    tf.tidy(() => {
      const r = model.evaluate(v.x, v.y, { batchSize: 256 }) as tf.Scalar[];
      return { val_loss: r[0].dataSync()[0], val_accuracy: r[1].dataSync()[0] };
    });
  const rand = prng(o.seed);
  const order = Array.from({ length: train.rows }, (_, i) => i);
  const history: EpochRecord[] = [];
  let best = evaluate().val_loss;
  let bestEpoch = 0;
  let bestWeights = model.getWeights().map((w) => w.clone());
  let wait = 0;
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      shuffle(order, rand);
      const idx = tf.tensor1d(order, 'int32');
      const xb = tf.gather(t.x, idx);
      const yb = tf.gather(t.y, idx);
      const h = await model.fit(xb, yb, { epochs: 1, batchSize: o.batchSize, shuffle: false, verbose: 0 });
      tf.dispose([idx, xb, yb]);
      const acc = h.history.acc ?? h.history.accuracy;
      const metrics: Record<string, number> = { loss: Number(h.history.loss[0]), ...(acc ? { accuracy: Number(acc[0]) } : {}), ...evaluate() };
      const record: EpochRecord = { epoch, metrics, ms: Math.round(performance.now() - t0) };
      history.push(record);
      o.onEpoch?.(record);
      if (metrics.val_loss < best) {
        best = metrics.val_loss;
        bestEpoch = epoch;
        wait = 0;
        tf.dispose(bestWeights);
        bestWeights = model.getWeights().map((w) => w.clone());
      } else if (++wait > o.patience) break;
      // Let IPC messages run between epochs: fit() only awaits microtasks.
      await new Promise((resolve) => setImmediate(resolve));
      if (o.pauseRatio) await new Promise((resolve) => setTimeout(resolve, record.ms * (o.pauseRatio ?? 0)));
      if (o.shouldStop?.()) break;
    }
    model.setWeights(bestWeights);
  } finally {
    tf.dispose(bestWeights);
    tf.dispose([t.x, t.y, v.x, v.y]);
  }
  return { history, epochsRun: history.length, bestEpoch };
}
