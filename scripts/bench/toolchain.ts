/**
 * Training toolchain benchmarks:
 *  - inference throughput of the exported formats (ONNX int8, ONNX fp32, tfjs) at batch 1 and
 *    32, for the digits MLP and CNN (from models/digits-tfjs and models/digits-cnn-tfjs,
 *    exported in memory) and a wider, untrained MLP where the matrix products dominate;
 *  - training samples per second on each available tfjs backend.
 *
 *   npx tsx scripts/bench/toolchain.ts [--ms 1500]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readBundle, type BundleDraft } from '../../src/bundle/index.js';
import { loadModel, tfjsArtifacts, type Engine, type EngineOptions } from '../../src/engine/index.js';
import {
  buildModel,
  exportVariant,
  fitModel,
  makeFitJob,
  memoryBundle,
  parseModelSpec,
  prepareData,
  readModelSpec,
  TRAINING_BACKENDS,
  useFastCpuConvGradient,
  type ModelSpec,
  type Variant,
} from '../../src/training/index.js';
import { fmt, isMain, table } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const BATCHES = [1, 32];
const WINDOWS = 3;
const engineOpts: EngineOptions = {
  onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  tfjs: { backends: ['tensorflow', 'wasm', 'cpu'] },
};
const FORMATS: Variant[] = ['onnx-int8', 'onnx-fp32', 'tfjs'];

/** calls/s of engine.run on a fixed batch: warm-up, then the best of WINDOWS timed windows. */
async function throughput(engine: Engine, batch: number, measureMs: number): Promise<number> {
  const input = engine.inputs[0];
  const perRow = input.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: batch * perRow }, (_, i) => Math.sin(i) * 1.5);
  const feeds = { [input.name]: { dtype: 'float32' as const, data, dims: [batch, ...input.shape.slice(1)] } };
  const warm = performance.now() + 300;
  for (let i = 0; i < 100_000 && performance.now() < warm; i++) await engine.run(feeds);
  let best = 0;
  for (let w = 0; w < WINDOWS; w++) {
    let calls = 0;
    const t0 = performance.now();
    const until = t0 + measureMs / WINDOWS;
    while (calls < 1_000_000 && performance.now() < until) {
      await engine.run(feeds);
      calls++;
    }
    best = Math.max(best, calls / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** Load one export of a model through the real engine, from memory. */
async function engineFor(model: tfl.LayersModel, variant: Variant, task: 'classification' | 'regression'): Promise<Engine> {
  const art = await exportVariant(model, variant, task);
  const draft: BundleDraft = { name: 'bench', version: '0.0.0', runtime: art.runtime, task, entry: art.entry, inputs: art.inputs, outputs: art.outputs, quantization: art.quantization, preprocessing: {} };
  return (await loadModel({ kind: 'bundle', bundle: memoryBundle(draft, art.files) }, engineOpts)).engine;
}

export async function runInference(measureMs = 1500): Promise<string> {
  const load = async (dir: string) => {
    const b = await readBundle(path.join(root, 'models', dir));
    return tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(b.files, b.manifest.entry)));
  };
  const wide = buildModel(parseModelSpec({ layers: [{ type: 'dense', units: 512, activation: 'relu' }, { type: 'dense', units: 256, activation: 'relu' }] }, 'wide'), { features: 64, outputUnits: 10 }).model;
  const models: [string, tfl.LayersModel][] = [
    ['digits MLP 64-64-32-10', await load('digits-tfjs')],
    ['digits CNN 8x8x1 (conv16-pool-conv32-pool-dense64)', await load('digits-cnn-tfjs')],
    ['wide MLP 64-512-256-10 (untrained)', wide],
  ];
  const rows: (string | number)[][] = [];
  for (const [name, model] of models) {
    const perBatch = new Map<number, number>();
    for (const variant of FORMATS) {
      const engine = await engineFor(model, variant, 'classification');
      try {
        for (const b of BATCHES) {
          const calls = await throughput(engine, b, measureMs);
          if (variant === 'onnx-fp32') perBatch.set(b, calls);
          rows.push([name, `${variant} (${engine.backend})`, b, fmt(calls), fmt(calls * b), fmt(1e6 / calls, 1), '']);
        }
      } finally {
        await engine.dispose();
      }
    }
    // int8 speed-up over fp32, filled in on the int8 rows.
    for (const r of rows.filter((x) => x[0] === name && String(x[1]).startsWith('onnx-int8'))) {
      const fp32 = perBatch.get(Number(r[2]))!;
      r[6] = `${(Number(String(r[3]).replace(/,/g, '')) / fp32).toFixed(2)}x`;
    }
  }
  return [
    `### Exported formats: engine.run() throughput, best of ${WINDOWS} windows of ${fmt(measureMs / WINDOWS / 1000, 1)} s, 1 intra-op thread`,
    '',
    table(['model', 'format (backend)', 'batch', 'calls/s', 'rows/s', 'µs per call', 'int8 vs fp32'], rows),
  ].join('\n');
}

export async function runTraining(): Promise<string> {
  const prepared = await prepareData({ data: path.join(root, 'data/digits.csv'), label: 'label', task: 'classification', splitSeed: 1797 });
  const specs: [string, ModelSpec, number][] = [
    ['digits MLP', await readModelSpec(path.join(root, 'specs/digits-mlp.json')), 3],
    ['digits CNN', await readModelSpec(path.join(root, 'specs/digits-cnn.json')), 2],
  ];
  const rows: (string | number)[][] = [];
  for (const [name, base, epochs] of specs) {
    const spec: ModelSpec = { ...base, training: { ...base.training, epochs, earlyStopping: undefined } };
    const runs: [string, () => void][] = [...TRAINING_BACKENDS.map((b): [string, () => void] => [b, () => useFastCpuConvGradient(true)])];
    if (spec.layers.some((l) => l.type === 'conv2d')) runs.push(['cpu (stock tfjs Conv2DBackpropFilter)', () => useFastCpuConvGradient(false)]);
    for (const [label, setup] of runs) {
      setup();
      const backend = label.split(' ')[0] as (typeof TRAINING_BACKENDS)[number];
      // The stock kernel is slow: one epoch on a third of the rows is enough to measure it.
      const job = makeFitJob(prepared, label.includes('stock') ? { ...spec, training: { ...spec.training, epochs: 1 } } : spec, name, { backend });
      if (label.includes('stock')) job.train = { x: job.train.x.subarray(0, 360 * 64), y: job.train.y.subarray(0, 360), rows: 360 };
      try {
        const { built, summary } = await fitModel(job);
        built.model.dispose();
        rows.push([name, label, fmt(summary.samplesPerSecond), `${summary.epochsRun} x ${job.train.rows} rows, batch ${spec.training.batchSize}`]);
      } catch (err) {
        rows.push([name, label, '-', (err as Error).message.replace(/^tfjs: no backend can train this model \((.*)\)$/, '$1')]);
      }
    }
    useFastCpuConvGradient(true);
  }
  return ['### Training throughput per tfjs backend (digits, 1078 training rows)', '', table(['model', 'backend', 'samples/s', 'run'], rows)].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { ms: { type: 'string', default: '1500' } } });
  tf.env().set('PROD', true);
  console.log(await runInference(Number(values.ms)));
  console.log('');
  console.log(await runTraining());
}
