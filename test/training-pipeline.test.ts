import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference, readBundle } from '../src/bundle/index.js';
import { loadServedModel } from '../src/daemon/load-models.js';
import { selectTfjsBackend, type ServedModel } from '../src/engine/index.js';
import {
  assignBin,
  buildEnsemble,
  EVAL_ENGINE_OPTIONS,
  evaluateBundle,
  parseModelSpec,
  prepareData,
  quantileEdges,
  runFit,
  makeFitJob,
  trainPipeline,
  type ModelSpecInput,
  type SplitFractions,
  type TrainerEvent,
  type TrainPipelineResult,
  type Variant,
} from '../src/training/index.js';

tf.env().set('PROD', true);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-training-'));
const ALL: Variant[] = ['tfjs', 'onnx-fp32', 'onnx-int8', 'tfjs-uint8', 'tfjs-float16'];

async function train(name: string, data: string, label: string, spec: ModelSpecInput, variants: Variant[] = ALL, splitSeed = 1, split?: SplitFractions): Promise<TrainPipelineResult> {
  return trainPipeline({
    data,
    label,
    spec: parseModelSpec(spec, `${name}.json`),
    splitSeed,
    split,
    targets: variants.map((variant, i) => ({ variant, dir: path.join(tmp, i === 0 ? name : `${name}-${variant}`), name: i === 0 ? name : `${name}-${variant}` })),
  });
}

const bundle = (r: TrainPipelineResult, v: Variant) => r.bundles.find((b) => b.target.variant === v)!;
const vs = (r: TrainPipelineResult, v: Variant) => bundle(r, v).metrics.vsFloat32 as { maxAbsDiff: number; top1Agreement?: number; accuracyChange?: number; r2Change?: number };
const accuracy = (r: TrainPipelineResult, v: Variant) => (bundle(r, v).metrics.test as { accuracy: number }).accuracy;

describe('training pipeline: digits MLP', () => {
  let r: TrainPipelineResult;
  beforeAll(async () => {
    r = await train('digits-mlp', 'data/digits.csv', 'label', {
      layers: [
        { type: 'dense', units: 64, activation: 'relu' },
        { type: 'dense', units: 32, activation: 'relu' },
      ],
      optimizer: { type: 'adam', learningRate: 0.01 },
      training: { epochs: 20, batchSize: 32, earlyStopping: { patience: 5 } },
      seed: 1797,
    });
  });

  it('reaches test accuracy >= 0.95 and every variant stays within 1 point of float32', () => {
    expect(r.evaluation.task).toBe('classification');
    expect(r.prepared.provenance.split.rows).toEqual({ train: 1078, validation: 362, test: 357 });
    const acc = r.evaluation.task === 'classification' ? r.evaluation.metrics.accuracy : 0;
    expect(acc).toBeGreaterThanOrEqual(0.95);
    for (const v of ALL) expect(Math.abs(accuracy(r, v) - acc), v).toBeLessThanOrEqual(0.01);
  });

  it('exports ONNX fp32 within 1e-4 and int8 with >= 99% top-1 agreement on the whole test split', () => {
    expect(vs(r, 'onnx-fp32').maxAbsDiff).toBeLessThan(1e-4);
    expect(vs(r, 'onnx-int8').top1Agreement).toBeGreaterThanOrEqual(0.99);
    expect(vs(r, 'onnx-int8').maxAbsDiff, 'int8 must really be quantized').toBeGreaterThan(1e-4);
    expect(vs(r, 'tfjs-float16').maxAbsDiff).toBeLessThan(1e-2);
    expect(vs(r, 'tfjs-uint8').top1Agreement).toBeGreaterThanOrEqual(0.99);
    expect(vs(r, 'tfjs').maxAbsDiff).toBe(0);
  });

  it('writes bundles with weights, embedding output, history, curves and a drift reference', async () => {
    const int8 = await readBundle(path.join(tmp, 'digits-mlp-onnx-int8'));
    const m = int8.manifest;
    expect(m).toMatchObject({ runtime: 'onnx', quantization: 'int8', task: 'classification', labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
    expect(m.outputs.map((o) => o.name)).toEqual(['probabilities', 'embedding']);
    expect(m.preprocessing.standardize!.mean).toHaveLength(64);
    const training = m.training as { history: unknown[]; epochs: { run: number }; backend: string; data: { sha256: string } };
    expect(training.history).toHaveLength(training.epochs.run);
    expect(training.backend).toBe('wasm');
    const svg = new TextDecoder().decode(int8.files.get('curves.svg'));
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    const ref = parseReference(m.reference, 'digits-mlp-onnx-int8');
    expect(ref.features).toHaveLength(64);
    for (const f of ref.features) expect(f.counts.reduce((a, b) => a + b, 0) + f.underflow + f.overflow).toBe(1078);
    expect(ref.predictions?.kind === 'classification' && ref.predictions.counts.reduce((a, b) => a + b, 0)).toBe(362);
    expect(ref.anchor?.rows).toHaveLength(32);
    expect(ref.anchor?.outputs[0]).toHaveLength(10);
  });

  it('scores a written bundle with `eval` exactly as the trainer recorded it (same test split, same engine)', async () => {
    const e = await evaluateBundle(path.join(tmp, 'digits-mlp-onnx-int8'), 'data/digits.csv', { engine: EVAL_ENGINE_OPTIONS });
    expect(e.data.used).toBe('test split');
    expect(e.evaluation.task === 'classification' && e.evaluation.metrics.accuracy).toBe(accuracy(r, 'onnx-int8'));
    const all = await evaluateBundle(path.join(tmp, 'digits-mlp-onnx-int8'), 'data/digits.csv', { rows: 'all', engine: EVAL_ENGINE_OPTIONS });
    expect(all.data.rows).toBe(1797);
  });
});

describe('training pipeline: every layer type exports to ONNX', () => {
  it('CNN on 8x8x1 input: conv2d same/valid/strided, batchnorm, max/avg pooling, reshape, activation, dropout, l1/l2', async () => {
    const r = await train(
      'digits-cnn',
      'data/digits.csv',
      'label',
      {
        inputShape: [8, 8, 1],
        layers: [
          { type: 'conv2d', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', l2: 0.0001 },
          { type: 'batchNormalization' },
          { type: 'maxPooling2d', poolSize: 2 },
          { type: 'conv2d', filters: 8, kernelSize: 2, strides: 1, padding: 'valid' },
          { type: 'activation', activation: 'elu' },
          { type: 'averagePooling2d', poolSize: 2, padding: 'same' },
          { type: 'flatten' },
          { type: 'dense', units: 16, activation: 'tanh', l1: 0.0001 },
          { type: 'reshape', targetShape: [4, 4, 1] },
          { type: 'conv2d', filters: 4, kernelSize: 2, strides: 2, activation: 'relu' },
          { type: 'flatten' },
          { type: 'dropout', rate: 0.1 },
          { type: 'dense', units: 16, activation: 'relu' },
        ],
        optimizer: { type: 'adam', learningRate: 0.01 },
        training: { epochs: 4, batchSize: 32 },
      },
      ['tfjs', 'onnx-fp32', 'onnx-int8'],
      1,
      // A smaller training split keeps the cpu-backend CNN quick; the export check uses the large test split.
      { train: 0.35, validation: 0.1, test: 0.55 },
    );
    expect(r.summary.backend).toBe('cpu');
    expect(r.summary.skipped.join(';')).toMatch(/wasm: no .*Conv2DBackpropFilter/);
    // Training switched tfjs to cpu and put back the backend the engines chose for serving.
    expect(tf.getBackend()).toBe((await selectTfjsBackend(EVAL_ENGINE_OPTIONS.tfjs.backends)).backend);
    expect(tf.getBackend()).toBe('wasm');
    expect(r.evaluation.task === 'classification' && r.evaluation.metrics.accuracy).toBeGreaterThan(0.8);
    expect(vs(r, 'onnx-fp32').maxAbsDiff).toBeLessThan(1e-4);
    expect(vs(r, 'onnx-int8').top1Agreement).toBeGreaterThanOrEqual(0.99);
    expect(bundle(r, 'onnx-fp32').manifest.inputs[0].shape).toEqual([-1, 8, 8, 1]);
  }, 40_000);

  it('regression (diabetes): R² >= 0.40, answers in target units, ONNX agrees', async () => {
    const r = await train(
      'diabetes',
      'data/diabetes.csv',
      'target',
      {
        task: 'regression',
        layers: [
          { type: 'dense', units: 16, activation: 'relu', l2: 0.01 },
          { type: 'dropout', rate: 0.1 },
        ],
        optimizer: { type: 'rmsprop', learningRate: 0.005 },
        training: { epochs: 150, batchSize: 32, earlyStopping: { patience: 15, monitor: 'val_mae' } },
        seed: 442,
      },
      ['onnx-fp32', 'onnx-int8', 'tfjs'],
    );
    expect(r.evaluation.task).toBe('regression');
    const m = r.evaluation.task === 'regression' ? r.evaluation.metrics : undefined;
    expect(m!.r2).toBeGreaterThanOrEqual(0.4);
    expect(m!.rmse).toBeGreaterThan(20);
    expect(m!.rmse).toBeLessThan(80);
    expect(vs(r, 'onnx-fp32').maxAbsDiff).toBeLessThan(1e-3);
    expect(Math.abs(vs(r, 'onnx-int8').r2Change!)).toBeLessThan(0.02);
    expect(bundle(r, 'onnx-fp32').manifest.outputs).toEqual([{ name: 'value', dtype: 'float32', shape: [-1, 1] }]);
    const served = await loadServedModel(path.join(tmp, 'diabetes'), EVAL_ENGINE_OPTIONS, { maxBatch: 32, maxDelayMs: 0, queueLimit: 10 });
    const out = await served.predict({ input: Float32Array.from([0.038, 0.05, 0.061, 0.021, -0.044, -0.034, -0.043, -0.002, 0.019, -0.017]) }, 1, Date.now() + 5000);
    const value = (out.predictions[0] as { value: number }).value;
    expect(value).toBeGreaterThan(25);
    expect(value).toBeLessThan(346);
    await served.dispose();
  }, 40_000);
});

describe('trainer in a worker thread', () => {
  it('reports backend and epochs over the message protocol, stops on request, and returns the model', async () => {
    const prepared = await prepareData({ data: 'data/wine.csv', label: 'label', task: 'classification' });
    const spec = parseModelSpec({ layers: [{ type: 'dense', units: 16, activation: 'relu' }], optimizer: { learningRate: 0.02 }, training: { epochs: 50, batchSize: 16 } }, 'wine.json');
    const events: TrainerEvent[] = [];
    const controller = new AbortController();
    const { model, summary } = await runFit(makeFitJob(prepared, spec, 'wine.json'), {
      mode: 'worker',
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'epoch-end' && e.record.epoch === 8) controller.abort();
      },
    });
    expect(events[0]).toMatchObject({ type: 'backend', backend: 'wasm' });
    const ends = events.filter((e) => e.type === 'epoch-end');
    expect(ends.length).toBeGreaterThanOrEqual(8);
    expect(ends.length).toBeLessThan(50);
    expect(summary.stopReason).toBe('stopped on request');
    expect(events.at(-1)).toMatchObject({ type: 'stopped' });
    // The returned model is usable here: it classifies the training rows well.
    const x = tf.tensor2d(makeFitJob(prepared, spec, 'wine.json').train.x, [prepared.split.train.length, 13]);
    const pred = (tf.argMax(model.predict(x) as tf.Tensor, -1) as tf.Tensor).dataSync();
    const right = Array.from(pred).filter((p, i) => p === prepared.dataset.y[prepared.split.train[i]]).length;
    expect(right / pred.length).toBeGreaterThan(0.9);
  }, 30_000);
});

describe('soft-voting ensemble', () => {
  const members: ServedModel[] = [];
  afterAll(async () => Promise.all(members.map((m) => m.dispose())));

  it('is one ONNX bundle the daemon serves: weighted mean of members with their own standardisation', async () => {
    const spec = (seed: number): ModelSpecInput => ({ layers: [{ type: 'dense', units: 8, activation: 'relu' }], optimizer: { learningRate: 0.02 }, training: { epochs: 30, batchSize: 16 }, seed });
    // Different split seeds: the members standardise differently, so the graph standardises per member.
    await train('wine-a', 'data/wine.csv', 'label', spec(1), ['onnx-int8'], 1);
    await train('wine-b', 'data/wine.csv', 'label', spec(2), ['tfjs'], 2);
    const out = path.join(tmp, 'wine-vote');
    const r = await buildEnsemble({ members: [path.join(tmp, 'wine-a'), path.join(tmp, 'wine-b')], weights: [1, 3], out, name: 'wine-vote', data: 'data/wine.csv', engine: EVAL_ENGINE_OPTIONS });
    expect(r.manifest).toMatchObject({ runtime: 'onnx', task: 'classification', labels: ['0', '1', '2'], preprocessing: {} });
    expect(r.evaluation!.data.used).toBe('all rows');

    const load = (dir: string) => loadServedModel(dir, EVAL_ENGINE_OPTIONS, { maxBatch: 64, maxDelayMs: 0, queueLimit: 10 });
    const [a, b, vote] = await Promise.all([load(path.join(tmp, 'wine-a')), load(path.join(tmp, 'wine-b')), load(out)]);
    members.push(a, b, vote);
    const rows = readFileSync('data/wine.csv', 'utf8').trim().split('\n').slice(1, 41).map((l) => l.split(',').slice(0, 13).map(Number));
    const ask = async (m: ServedModel) => (await m.predict({ input: Float32Array.from(rows.flat()) }, rows.length, Date.now() + 5000)).predictions as { probabilities: number[]; label: string }[];
    const [pa, pb, pv] = await Promise.all([ask(a), ask(b), ask(vote)]);
    for (let i = 0; i < rows.length; i++) {
      for (let c = 0; c < 3; c++) expect(pv[i].probabilities[c]).toBeCloseTo(0.25 * pa[i].probabilities[c] + 0.75 * pb[i].probabilities[c], 4);
    }
    const e = await evaluateBundle(out, 'data/wine.csv', { engine: EVAL_ENGINE_OPTIONS });
    expect(e.evaluation.task === 'classification' && e.evaluation.metrics.accuracy).toBe((r.manifest.metrics as { testAccuracy: number }).testAccuracy);
    expect(e.evaluation.task === 'classification' && e.evaluation.metrics.accuracy).toBeGreaterThan(0.9);
  }, 30_000);
});

describe('reference profile binning', () => {
  it('uses left-closed bins with a closed last bin, and [c, c] for a constant column', () => {
    // 11 sorted values, 4 bins: nearest ranks 0, 3 (2.5 rounds up), 5, 8, 10.
    const edges = quantileEdges([8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7], 4);
    expect(edges).toEqual([0, 1, 3, 6, 8]);
    expect([-1, 0, 0.99, 1, 6, 8, 8.01].map((v) => assignBin(edges, v))).toEqual([-1, 0, 0, 1, 3, 3, 4]);
    // Duplicate quantiles collapse: strictly ascending edges.
    expect(quantileEdges([0, 0, 0, 0, 0, 0, 0, 0, 1, 2], 4)).toEqual([0, 2]);
    expect(quantileEdges([3, 3, 3], 10)).toEqual([3, 3]);
    expect(assignBin([3, 3], 3)).toBe(0);
  });
});
