import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readBundle, writeBundle, type BundleDraft, type Manifest, type VerifiedBundle } from '../bundle/index.js';
import { loadModel, tfjsArtifacts, type Engine } from '../engine/index.js';
import { EdgeloopError } from '../errors.js';
import { learningCurvesSvg } from '../training/charts/index.js';
import { agreement, argmaxRows, enginePredict, layersPredict, predictAll, standardizeLikeDaemon, type Predict } from '../training/evaluate/index.js';
import { exportVariant, memoryBundle, withTrainableSource, type Variant } from '../training/export/index.js';
import { EVAL_ENGINE_OPTIONS } from '../training/pipeline/index.js';
import { kernelsOfTrainingStep, selectTrainingBackend, type EpochRecord } from '../training/trainer/index.js';
import { anchorRows, buildFineTuneData, type FineTuneData, type FitRows } from './data.js';
import { fitLayers, freezeAllButLast, type FitLayersResult } from './fit-layers.js';
import { attachHead } from './head-onnx.js';
import { parentVariant, resolveStrategy } from './strategy.js';
import type { FineTuneJob, FineTuneProgress, FineTuneSummary, ResolvedStrategy } from './types.js';

export interface CandidateHooks {
  progress?: (p: FineTuneProgress) => void;
  shouldStop?: () => boolean;
}

/** What a strategy hands back: the candidate's model files and how training went. */
interface Trained {
  files: Map<string, Uint8Array>;
  entry: string;
  runtime: Manifest['runtime'];
  quantization: Manifest['quantization'];
  outputs: Manifest['outputs'];
  trainable?: { entry: string; runtime: 'tfjs' };
  variant: Variant | 'onnx-backbone+head';
  backend: string;
  skipped: string[];
  fit: FitLayersResult;
  /** The float32 trained model's outputs on the validation rows (what the served variant is compared with). */
  floatValidation: Float32Array;
  quantizationDetails?: Record<string, unknown>;
}

const BATCH = 32;
const PATIENCE = 10;
const accuracy = (out: Float32Array, width: number, y: Float32Array) => argmaxRows(out, width).filter((p, i) => p === y[i]).length / y.length;

/** Pick the training backend for a model's kernels (probed on a throwaway copy) and set it. */
async function trainingBackend(probe: () => Promise<tfl.LayersModel>, classes: number): Promise<{ backend: string; skipped: string[] }> {
  const kernels = await kernelsOfTrainingStep(async () => {
    const m = await probe();
    m.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const x = tf.zeros([2, ...(m.inputs[0].shape.slice(1) as number[])]);
    const y = tf.zeros([2, classes]);
    await m.trainOnBatch(x, y);
    tf.dispose([x, y]);
    m.dispose();
  });
  const choice = await selectTrainingBackend(kernels);
  return { backend: choice.backend, skipped: choice.skipped };
}

/** 'full' / 'last-layers' / 'head' of a trainable float32 LayersModel, re-exported as the parent's own variant. */
async function trainLayers(bundle: VerifiedBundle, entry: string, strategy: ResolvedStrategy, job: FineTuneJob, data: FineTuneData, classes: number, hooks: CandidateHooks): Promise<Trained> {
  const m = bundle.manifest;
  const artifacts = tfjsArtifacts(bundle.files, entry);
  const load = () => tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  const { backend, skipped } = await trainingBackend(load, classes);
  const model = await load();
  try {
    freezeAllButLast(model, strategy === 'full' ? undefined : strategy === 'head' ? 1 : job.policy.lastLayers);
    const train = repeatReplay({ ...data.train, targets: await replayTargets(model, data, classes) }, data.counts.new, classes, REPLAY_REPEAT);
    const fit = await fitLayers(model, train, data.validation, {
      classes,
      epochs: job.policy.epochs,
      learningRate: job.policy.learningRate ?? 1e-3,
      batchSize: BATCH,
      patience: PATIENCE,
      seed: job.seed,
      pauseRatio: job.policy.pauseRatio,
      logits: m.outputKind === 'logits',
      onEpoch: (r) => hooks.progress?.({ stage: 'training', epoch: r.epoch, epochs: job.policy.epochs, metrics: r.metrics }),
      shouldStop: hooks.shouldStop,
    });
    hooks.progress?.({ stage: 'exporting' });
    const variant = parentVariant(m);
    // Static int8 is recalibrated on the rows the candidate was fine-tuned on, as the model sees them.
    const art = await exportVariant(model, variant, m.task, { calibration: { rows: data.train.x, count: data.train.rows, source: 'fine-tuning rows (new and replay)' }, calibrationMethod: FINETUNE_CALIBRATION });
    const files = new Map(art.files);
    const trainable = art.runtime === 'onnx' ? await withTrainableSource(model, files) : undefined;
    const floatValidation = (await predictAll(layersPredict(model), data.validation.x, data.validation.rows)).data;
    return { files, entry: art.entry, runtime: art.runtime, quantization: art.quantization, outputs: art.outputs, trainable, variant, backend, skipped, fit, floatValidation, quantizationDetails: art.quantizationDetails };
  } finally {
    model.dispose();
  }
}

/** Weight of the true label in a replay row's target; the rest is the parent's own prediction. */
const REPLAY_LABEL_WEIGHT = 0.5;

/**
 * Targets of the training mix: one-hot for the new rows; for replay rows, half the true label
 * and half what the parent model predicted for them (learning without forgetting, Li & Hoiem
 * 2016): the candidate is pulled towards the parent's behaviour on the data it already served
 * well, which keeps clean accuracy while the first layers adapt to the shift.
 */
async function replayTargets(model: tfl.LayersModel, data: FineTuneData, classes: number): Promise<Float32Array> {
  const parent = (await predictAll(layersPredict(model), data.train.x, data.train.rows)).data;
  const t = new Float32Array(data.train.rows * classes);
  for (let r = 0; r < data.train.rows; r++) {
    const label = data.train.y[r];
    const replay = r >= data.counts.new;
    for (let c = 0; c < classes; c++) t[r * classes + c] = replay ? REPLAY_LABEL_WEIGHT * +(c === label) + (1 - REPLAY_LABEL_WEIGHT) * parent[r * classes + c] : +(c === label);
  }
  return t;
}

/**
 * Replay rows count this many times per epoch: a shifted input stream pulls the model away
 * from clean inputs, and weighting what it already knew twice keeps clean accuracy within
 * the acceptance bound (measured: clean drop 2.2 -> 1.2-1.5 points on digits int8, shift-right).
 */
const REPLAY_REPEAT = 2;

/**
 * Static int8 ranges of a fine-tuned model: the 99.9th percentile, not the toolchain's 99.99th.
 * Fault rows (a shifted image) put a few columns far out in standardised units; at 99.99 they
 * widen the input scale and coarsen every clean value (measured: ~0.5 points of clean accuracy).
 */
const FINETUNE_CALIBRATION = { method: 'percentile', percentile: 99.9 } as const;

/** The new rows, then the replay rows `times` times (rows, labels and soft targets). */
function repeatReplay(t: FitRows, nNew: number, classes: number, times: number): FitRows {
  const cols = t.x.length / t.rows;
  const nRep = t.rows - nNew;
  const rows = nNew + nRep * times;
  const x = new Float32Array(rows * cols);
  const y = new Float32Array(rows);
  const targets = new Float32Array(rows * classes);
  x.set(t.x.subarray(0, nNew * cols));
  y.set(t.y.subarray(0, nNew));
  targets.set(t.targets!.subarray(0, nNew * classes));
  for (let k = 0; k < times; k++) {
    const at = nNew + k * nRep;
    x.set(t.x.subarray(nNew * cols), at * cols);
    y.set(t.y.subarray(nNew), at);
    targets.set(t.targets!.subarray(nNew * classes), at * classes);
  }
  return { x, y, rows, targets };
}

/** Rows through an engine, one named output. */
async function engineOutput(engine: Engine, name: string, x: Float32Array, rows: number): Promise<{ data: Float32Array; width: number }> {
  const input = engine.inputs[0];
  const predict: Predict = async (b, n) => Float32Array.from((await engine.run({ [input.name]: { dtype: 'float32', data: b, dims: [n, ...input.shape.slice(1)] } }))[name].data as Float32Array);
  return predictAll(predict, x, rows);
}

/** 'head' on an ONNX backbone without a source: a softmax dense head on its frozen embedding, written into the same graph. */
async function trainHeadOnEmbedding(bundle: VerifiedBundle, output: string, job: FineTuneJob, data: FineTuneData, classes: number, hooks: CandidateHooks): Promise<Trained> {
  const m = bundle.manifest;
  hooks.progress?.({ stage: 'embedding' });
  const { engine } = await loadModel({ kind: 'bundle', bundle }, EVAL_ENGINE_OPTIONS);
  let train: FitRows;
  let val: FitRows;
  let width: number;
  try {
    const t = await engineOutput(engine, output, data.train.x, data.train.rows);
    const v = await engineOutput(engine, output, data.validation.x, data.validation.rows);
    width = t.width;
    train = { x: t.data, y: data.train.y, rows: data.train.rows };
    val = { x: v.data, y: data.validation.y, rows: data.validation.rows };
  } finally {
    await engine.dispose();
  }
  const make = async () => tfl.sequential({ layers: [tfl.layers.dense({ units: classes, activation: 'softmax', inputShape: [width], kernelInitializer: tfl.initializers.glorotUniform({ seed: job.seed }) })] });
  const { backend, skipped } = await trainingBackend(make, classes);
  const head = await make();
  try {
    const fit = await fitLayers(head, train, val, {
      classes,
      epochs: job.policy.epochs,
      // A head from scratch needs a larger step than fine-tuning trained weights.
      learningRate: job.policy.learningRate ?? 1e-2,
      batchSize: BATCH,
      patience: PATIENCE,
      seed: job.seed,
      pauseRatio: job.policy.pauseRatio,
      onEpoch: (r) => hooks.progress?.({ stage: 'training', epoch: r.epoch, epochs: job.policy.epochs, metrics: r.metrics }),
      shouldStop: hooks.shouldStop,
    });
    hooks.progress?.({ stage: 'exporting' });
    const [kernel, bias] = head.getWeights().map((w) => w.dataSync() as Float32Array);
    const bytes = attachHead(bundle.files.get(m.entry)!, { kernel, bias, embedding: width, classes }, { outputName: m.outputs[0].name, embeddingName: output });
    const floatValidation = (await predictAll(layersPredict(head), val.x, val.rows)).data;
    const outputs: Manifest['outputs'] = [{ ...m.outputs[0], shape: [-1, classes] }, ...m.outputs.filter((o) => o.name === output)];
    return { files: new Map([[m.entry, bytes]]), entry: m.entry, runtime: 'onnx', quantization: m.quantization, outputs, variant: 'onnx-backbone+head', backend, skipped, fit, floatValidation };
  } finally {
    head.dispose();
  }
}

/** Top-1 agreement the served export must have with the fine-tuned float32 model it came from (the toolchain's variant check). */
const MIN_EXPORT_AGREEMENT = 0.9;

/**
 * Refuse an export that does not serve what was trained. The trainer checks it after the gate:
 * a candidate the gate refuses is refused whatever its export (a model trained on noise has
 * near-flat outputs that int8 reorders, and "failed" would hide that it was worse).
 */
export function assertFaithfulExport(summary: FineTuneSummary): void {
  if (summary.exportAgreement >= MIN_EXPORT_AGREEMENT) return;
  throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `the exported ${summary.variant} agrees with the fine-tuned float32 model on only ${(summary.exportAgreement * 100).toFixed(1)}% of the validation rows`);
}

/**
 * Build a verified candidate bundle from a parent bundle and labelled rows (runs inside the
 * trainer process): choose the strategy, mix the data, fine-tune, re-export in the parent's
 * own format, load the result with the real engine, score it and the parent on the
 * fine-tuning validation split, and write it atomically to `job.outDir`.
 */
export async function buildCandidate(job: FineTuneJob, hooks: CandidateHooks = {}): Promise<{ dir: string; version: string; summary: FineTuneSummary }> {
  const started = performance.now();
  hooks.progress?.({ stage: 'loading' });
  const bundle = await readBundle(job.bundleDir);
  const m = bundle.manifest;
  const { strategy, path } = resolveStrategy(m, job.policy.strategy);
  const classes = m.labels?.length ?? m.outputs[0].shape.at(-1)!;
  const data = buildFineTuneData({ manifest: m, rows: job.rows, replay: job.replay, replayRows: job.policy.replayRows, validationFraction: job.validationFraction, refit: job.policy.refitPreprocessing, seed: job.seed, classes });
  const trained = path.kind === 'layers' ? await trainLayers(bundle, path.entry, strategy, job, data, classes, hooks) : await trainHeadOnEmbedding(bundle, path.kind === 'embedding' ? path.output : 'embedding', job, data, classes, hooks);

  hooks.progress?.({ stage: 'verifying' });
  const { format: _f, artifacts: _a, trainable: _t, createdAt: _c, ...rest } = m;
  const history: EpochRecord[] = trained.fit.history;
  trained.files.set('curves.svg', new TextEncoder().encode(learningCurvesSvg(history, `${m.name}@${job.version}: fine-tuned (${strategy})`, { bestEpoch: trained.fit.bestEpoch })));
  const base: BundleDraft = {
    ...rest,
    version: job.version,
    runtime: trained.runtime,
    entry: trained.entry,
    outputs: trained.outputs,
    quantization: trained.quantization,
    preprocessing: data.standardize ? { standardize: data.standardize } : {},
    ...(trained.trainable ? { trainable: trained.trainable } : {}),
  };
  const rows = data.validation.rows;
  const { engine } = await loadModel({ kind: 'bundle', bundle: memoryBundle(base, trained.files, job.outDir) }, EVAL_ENGINE_OPTIONS);
  let candidateVal: Float32Array;
  let anchorOut: Float32Array | undefined;
  const anchor = anchorRows(m);
  try {
    candidateVal = (await predictAll(enginePredict(engine), data.validation.x, rows)).data;
    if (anchor) anchorOut = (await predictAll(enginePredict(engine), standardizeLikeDaemon(anchor.x, data.standardize), anchor.rows)).data;
  } finally {
    await engine.dispose();
  }
  const parentLoaded = await loadModel({ kind: 'bundle', bundle }, EVAL_ENGINE_OPTIONS);
  let parentVal: Float32Array;
  try {
    parentVal = (await predictAll(enginePredict(parentLoaded.engine), standardizeLikeDaemon(data.validationRaw, m.preprocessing.standardize), rows)).data;
  } finally {
    await parentLoaded.engine.dispose();
  }
  const vs = agreement(candidateVal, trained.floatValidation, classes);
  const validation = { parent: accuracy(parentVal, classes, data.validation.y), candidate: accuracy(candidateVal, classes, data.validation.y), rows };
  const durationMs = Math.round(performance.now() - started);
  const summary: FineTuneSummary = { strategy, variant: trained.variant, backend: trained.backend, epochsRun: trained.fit.epochsRun, bestEpoch: trained.fit.bestEpoch, trainRows: data.counts, durationMs, validation, exportAgreement: vs.top1 ?? 1 };
  const reference = m.reference && anchor && anchorOut ? { ...(m.reference as object), anchor: { ...(m.reference as { anchor: object }).anchor, outputs: Array.from({ length: anchor.rows }, (_, i) => Array.from(anchorOut!.subarray(i * classes, (i + 1) * classes), (v) => Math.round(v * 1e6) / 1e6)) } } : m.reference;
  const draft: BundleDraft = {
    ...base,
    reference,
    metrics: { validation: { accuracy: validation.candidate, rows, parentAccuracy: validation.parent, split: 'fine-tuning validation (new and replay rows)' }, vsFloat32: { maxAbsDiff: vs.maxAbsDiff, top1Agreement: vs.top1 } },
    training: {
      kind: 'finetune',
      source: 'finetune',
      parent: { name: m.name, version: m.version },
      parentVersion: m.version,
      strategy,
      ...(strategy === 'last-layers' ? { lastLayers: job.policy.lastLayers } : {}),
      exportedAs: trained.variant,
      rows: data.counts,
      ...(data.timeRange ? { timeRange: { from: new Date(data.timeRange.from).toISOString(), to: new Date(data.timeRange.to).toISOString() } } : {}),
      preprocessing: job.policy.refitPreprocessing ? 'refit on the fine-tuning rows' : "the parent's",
      epochs: { run: trained.fit.epochsRun, best: trained.fit.bestEpoch, max: job.policy.epochs },
      backend: trained.backend,
      skippedBackends: trained.skipped,
      durationMs,
      history,
      ...(trained.quantizationDetails ? { quantization: trained.quantizationDetails } : {}),
      parentTraining: (m.training as { data?: unknown } | undefined)?.data ? { data: (m.training as { data: unknown }).data } : undefined,
    },
  };
  hooks.progress?.({ stage: 'writing' });
  await writeBundle(job.outDir, draft, trained.files);
  return { dir: job.outDir, version: job.version, summary };
}
