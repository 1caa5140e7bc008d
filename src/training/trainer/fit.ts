import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { EdgeloopError } from '../../errors.js';
import { prng, shuffle } from '../data/split.js';
import { buildModel, compileModel, type BuiltModel } from '../spec/index.js';
import { kernelsOfTrainingStep, selectTrainingBackend } from './backend.js';
import type { EpochRecord, FitJob, FitSummary, TrainerEvent } from './types.js';

export interface FitHooks {
  onEvent?: (event: TrainerEvent) => void;
  /** Checked after every epoch: true ends training (the best weights so far are kept). */
  shouldStop?: () => boolean;
}

/** Minimum time between two 'batch' events, so a fast loop does not flood a terminal or a worker port. */
const BATCH_EVENT_MS = 100;

/**
 * Fit a model to a job: choose the backend for the model's kernels, build and compile the
 * spec, then train epoch by epoch with a seeded shuffle, validation after each epoch, early
 * stopping with patience, and the best epoch's weights restored. Leaves tfjs on the training
 * backend; the caller restores its own choice if it had one.
 */
export async function fitModel(job: FitJob, hooks: FitHooks = {}): Promise<{ built: BuiltModel; summary: FitSummary }> {
  const emit = hooks.onEvent ?? (() => undefined);
  const { spec } = job;
  const classification = spec.task === 'classification';
  const build = () => buildModel(spec, { features: job.features, outputUnits: job.outputUnits, targetScale: job.targetScale, name: job.name });

  const kernels = await kernelsOfTrainingStep(async () => {
    const probe = build();
    compileModel(probe, spec);
    const rows = 2;
    const x = tf.zeros([rows, ...(spec.inputShape ?? [job.features])]);
    const y = tf.zeros([rows, job.outputUnits]);
    await probe.trainable.trainOnBatch(x, y);
    tf.dispose([x, y]);
    probe.model.dispose();
  });
  const choice = await selectTrainingBackend(kernels, job.backend ?? 'auto');
  emit({ type: 'backend', backend: choice.backend, skipped: choice.skipped });

  const built = build();
  compileModel(built, spec);
  const inputShape = spec.inputShape ?? [job.features];
  const toTensors = (d: { x: Float32Array; y: Float32Array; rows: number }) =>
    tf.tidy(() => {
      const x = tf.tensor(d.x, [d.rows, ...inputShape]);
      const y = classification
        ? tf.cast(tf.oneHot(tf.tensor1d(Array.from(d.y), 'int32'), job.outputUnits), 'float32')
        : tf.tensor2d(Array.from(d.y, (v) => (v - job.targetScale!.mean) / job.targetScale!.std), [d.rows, 1]);
      return { x, y };
    });
  const train = toTensors(job.train);
  const val = job.validation && job.validation.rows > 0 ? toTensors(job.validation) : undefined;

  const { epochs, batchSize, earlyStopping } = spec.training;
  if (earlyStopping && !val) throw new EdgeloopError('EDGELOOP_SPEC_INVALID', "'training.earlyStopping' needs a validation split (--split with validation > 0)");
  const monitor = earlyStopping?.monitor ?? 'val_loss';
  const maximise = monitor === 'val_accuracy';
  const batches = Math.ceil(job.train.rows / batchSize);
  const rand = prng(spec.seed);
  const order = Array.from({ length: job.train.rows }, (_, i) => i);
  const history: EpochRecord[] = [];
  let best = maximise ? -Infinity : Infinity;
  let bestEpoch = 0;
  let bestWeights: tf.Tensor[] | undefined;
  let wait = 0;
  let stopReason: string | undefined;
  let fitMs = 0;
  const started = performance.now();

  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      emit({ type: 'epoch-start', epoch, epochs, batches });
      shuffle(order, rand);
      const idx = tf.tensor1d(order, 'int32');
      const xb = tf.gather(train.x, idx);
      const yb = tf.gather(train.y, idx);
      let lastBatchEvent = 0;
      const t0 = performance.now();
      const h = await built.trainable.fit(xb, yb, {
        epochs: 1,
        batchSize,
        shuffle: false,
        verbose: 0,
        callbacks: {
          onBatchEnd: async (batch, logs) => {
            const now = performance.now();
            if (now - lastBatchEvent >= BATCH_EVENT_MS || batch === batches - 1) {
              lastBatchEvent = now;
              emit({ type: 'batch', epoch, batch: batch + 1, batches, loss: Number(logs?.loss) });
            }
          },
        },
      });
      fitMs += performance.now() - t0;
      tf.dispose([idx, xb, yb]);
      const metrics: Record<string, number> = { loss: Number(h.history.loss[0]) };
      const acc = h.history.acc ?? h.history.accuracy;
      if (acc) metrics.accuracy = Number(acc[0]);
      if (!Number.isFinite(metrics.loss)) {
        throw new EdgeloopError('EDGELOOP_TRAINING_FAILED', `the training loss became ${metrics.loss} in epoch ${epoch}; lower the learning rate or standardise the data`);
      }
      if (val) Object.assign(metrics, validationMetrics(built, val, job, classification));
      const record: EpochRecord = { epoch, metrics, ms: Math.round(performance.now() - t0) };
      history.push(record);

      const score = val ? metrics[monitor] : metrics.loss;
      const improved = maximise ? score > best + (earlyStopping?.minDelta ?? 0) : score < best - (earlyStopping?.minDelta ?? 0);
      if (improved) {
        best = score;
        bestEpoch = epoch;
        wait = 0;
        if (earlyStopping?.restoreBest) {
          tf.dispose(bestWeights ?? []);
          bestWeights = built.model.getWeights().map((w) => w.clone());
        }
      } else wait++;
      emit({ type: 'epoch-end', record, improved });

      // Let timers and messages run (a worker's 'stop', a CLI's Ctrl-C): fit() itself only awaits microtasks.
      await new Promise((resolve) => setImmediate(resolve));
      if (earlyStopping && wait > earlyStopping.patience) {
        stopReason = `${monitor} did not improve for ${wait} epochs (patience ${earlyStopping.patience})`;
        break;
      }
      if (hooks.shouldStop?.()) {
        stopReason = 'stopped on request';
        break;
      }
    }
    // Without early stopping the model keeps its last epoch's weights.
    if (bestWeights && bestEpoch !== history.length) built.model.setWeights(bestWeights);
    if (!bestWeights) bestEpoch = history.length;
  } catch (err) {
    built.model.dispose();
    throw err;
  } finally {
    tf.dispose(bestWeights ?? []);
    tf.dispose([train.x, train.y]);
    if (val) tf.dispose([val.x, val.y]);
  }
  if (stopReason) emit({ type: 'stopped', epoch: history.length, bestEpoch, reason: stopReason });
  const epochsRun = history.length;
  return {
    built,
    summary: {
      backend: choice.backend,
      skipped: choice.skipped,
      history,
      epochsRun,
      bestEpoch,
      stoppedEarly: epochsRun < epochs,
      stopReason,
      durationMs: Math.round(performance.now() - started),
      samplesPerSecond: Math.round((job.train.rows * epochsRun) / (fitMs / 1000)),
      params: built.model.countParams(),
    },
  };
}

/** val_loss on the trainable part; val_accuracy, or val_mae in the target's own units. */
function validationMetrics(built: BuiltModel, val: { x: tf.Tensor; y: tf.Tensor }, job: FitJob, classification: boolean): Record<string, number> {
  return tf.tidy(() => {
    const evaluated = built.trainable.evaluate(val.x, val.y, { batchSize: 256 }) as tf.Scalar | tf.Scalar[];
    const list = Array.isArray(evaluated) ? evaluated : [evaluated];
    const out: Record<string, number> = { val_loss: list[0].dataSync()[0] };
    if (classification) out.val_accuracy = list[1].dataSync()[0];
    else {
      const pred = tf.reshape(built.model.predict(val.x, { batchSize: 256 }) as tf.Tensor, [-1]);
      const truth = tf.tensor1d(job.validation!.y);
      out.val_mae = tf.mean(tf.abs(tf.sub(pred, truth))).dataSync()[0];
    }
    return out;
  });
}

/** The model as plain tfjs artifacts (topology + float32 weights), e.g. to post from a worker. */
export async function modelToArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  const weightData = tf.io.CompositeArrayBuffer.join(saved!.weightData);
  return { modelTopology: saved!.modelTopology, weightSpecs: saved!.weightSpecs, weightData };
}
