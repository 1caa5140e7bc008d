/**
 * Training toolchain benchmarks:
 *  - inference throughput of the exported formats (ONNX int8 dynamic and static, ONNX fp32, tfjs) at batch 1 and
 *    32, for the digits MLP and CNN (from models/digits-tfjs and models/digits-cnn-tfjs,
 *    exported in memory), a wider, untrained MLP where the matrix products dominate, and an
 *    MNIST-size one (784 inputs) whose first layer (784 x 512 weights) dominates;
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
  measureThroughput,
  MEASURE_WINDOWS,
  memoryBundle,
  parseModelSpec,
  prepareData,
  readModelSpec,
  selectRows,
  TRAINING_BACKENDS,
  useFastCpuConvGradient,
  type ExportVariantOptions,
  type ModelSpec,
  type Variant,
} from '../../src/training/index.js';
import { fmt, isMain, met, standalone, table, type BenchResult, type TargetRow } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const BATCHES = [1, 32];
const engineOpts: EngineOptions = {
  onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  tfjs: { backends: ['tensorflow', 'wasm', 'cpu'] },
};
type Calibration = NonNullable<ExportVariantOptions['calibration']>;
const FORMATS: Variant[] = ['onnx-int8', 'onnx-int8-static', 'onnx-fp32', 'tfjs'];

/** Load one export of a model through the real engine, from memory. */
async function engineFor(model: tfl.LayersModel, variant: Variant, task: 'classification' | 'regression', calibration: Calibration): Promise<Engine> {
  const art = await exportVariant(model, variant, task, { calibration });
  const draft: BundleDraft = { name: 'bench', version: '0.0.0', runtime: art.runtime, task, entry: art.entry, inputs: art.inputs, outputs: art.outputs, quantization: art.quantization, preprocessing: {} };
  return (await loadModel({ kind: 'bundle', bundle: memoryBundle(draft, art.files) }, engineOpts)).engine;
}

/**
 * The model the int8 target is judged on: the wide MLP on the digits' 64 inputs, where the
 * matrix products dominate (the MNIST-size MLP, added later, is reported beside it).
 */
const JUDGED = 'wide MLP 64-512-256-10 (untrained)';
const MNIST = 'MNIST-size MLP 784-512-256-10 (untrained)';

export async function runInference(measureMs = 1500): Promise<BenchResult> {
  const load = async (dir: string) => {
    const b = await readBundle(path.join(root, 'models', dir));
    return tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(b.files, b.manifest.entry)));
  };
  const mnist = buildModel(parseModelSpec({ layers: [{ type: 'dense', units: 512, activation: 'relu' }, { type: 'dense', units: 256, activation: 'relu' }] }, 'mnist'), { features: 784, outputUnits: 10 }).model;
  const wide = buildModel(parseModelSpec({ layers: [{ type: 'dense', units: 512, activation: 'relu' }, { type: 'dense', units: 256, activation: 'relu' }] }, 'wide'), { features: 64, outputUnits: 10 }).model;
  // Static int8 calibration: the digits training split (as build-models uses), or rows like the benchmark input.
  const digits = await prepareData({ data: path.join(root, 'data/digits.csv'), label: 'label', task: 'classification', splitSeed: 1 });
  const digitsTrain: Calibration = { rows: selectRows(digits.xStd, 64, digits.split.train), count: digits.split.train.length, source: 'training split' };
  const synthetic = (perRow: number): Calibration => ({ rows: Float32Array.from({ length: 256 * perRow }, (_, i) => Math.sin(i * 7.1) * 1.5), count: 256, source: 'synthetic rows' });
  const models: [string, tfl.LayersModel, Calibration][] = [
    ['digits MLP 64-64-32-10', await load('digits-tfjs'), digitsTrain],
    ['digits CNN 8x8x1 (conv16-pool-conv32-pool-dense64)', await load('digits-cnn-tfjs'), digitsTrain],
    ['wide MLP 64-512-256-10 (untrained)', wide, synthetic(64)],
    // The shape commit e9da923 quoted (MNIST-size input): the first layer's 784 x 512 weights dominate.
    ['MNIST-size MLP 784-512-256-10 (untrained)', mnist, synthetic(784)],
  ];
  const rows: (string | number)[][] = [];
  const speedup = new Map<string, number>(); // "model/batch[/static]" -> int8 rows/s over fp32 rows/s
  for (const [name, model, calibration] of models) {
    const loaded: [Variant, Engine][] = [];
    for (const variant of FORMATS) {
      try {
        loaded.push([variant, await engineFor(model, variant, 'classification', calibration)]);
      } catch (err) {
        // One export that fails (the exporter is under active development) is a row, not the end of the bench.
        rows.push([name, variant, '–', 'failed', '–', '–', (err as Error).message.replace(/\s+/g, ' ').slice(0, 160)]);
      }
    }
    try {
      // The formats take turns in short windows (as `edgeloop export` measures), so a change
      // of load on this shared machine hits them alike and their ratios hold.
      const speeds = await measureThroughput(loaded.map(([, e]) => e), { batches: BATCHES, ms: measureMs });
      const fp32 = speeds[loaded.findIndex(([v]) => v === 'onnx-fp32')];
      loaded.forEach(([variant, engine], i) => {
        for (const t of speeds[i]) {
          const base = fp32?.find((f) => f.batch === t.batch)?.callsPerSecond;
          const x = variant.startsWith('onnx-int8') && base ? t.callsPerSecond / base : undefined;
          if (x !== undefined) speedup.set(`${name}/${t.batch}${variant === 'onnx-int8-static' ? '/static' : ''}`, x);
          rows.push([name, `${variant} (${engine.backend})`, t.batch, fmt(t.callsPerSecond), fmt(t.rowsPerSecond), fmt(1e6 / t.callsPerSecond, 1), x === undefined ? '' : `${x.toFixed(2)}x`]);
        }
      });
    } finally {
      for (const [, e] of loaded) await e.dispose();
    }
  }
  const x = (model: string, batch: number, isStatic = false) => `${(speedup.get(`${model}/${batch}${isStatic ? '/static' : ''}`) ?? NaN).toFixed(2)}x`;
  const best = Math.max(...BATCHES.flatMap((b) => [speedup.get(`${JUDGED}/${b}`) ?? 0, speedup.get(`${JUDGED}/${b}/static`) ?? 0]));
  const cnn = models[1][0];
  const targets: TargetRow[] = [
    [
      `toolchain: ONNX int8 / fp32 throughput, larger model (${JUDGED.replace(' (untrained)', '')}), best batch`,
      `${x(JUDGED, 32)} at batch 32, ${x(JUDGED, 1)} at batch 1 (static int8: ${x(JUDGED, 32, true)} / ${x(JUDGED, 1, true)}; digits MLP: ${x(models[0][0], 32)} / ${x(models[0][0], 1)}, static ${x(models[0][0], 32, true)} / ${x(models[0][0], 1, true)}; ` +
        `for reference, MNIST-size MLP 784-512-256-10: ${x(MNIST, 32)} / ${x(MNIST, 1)})`,
      '≥ 1.5x',
      met(best >= 1.5),
    ],
    [
      'toolchain: ONNX int8 static / fp32 throughput, digits CNN, batch 32',
      `${x(cnn, 32, true)} at batch 32 (batch 1: ${x(cnn, 1, true)}; dynamic int8: ${x(cnn, 32)} / ${x(cnn, 1)})`,
      '≥ 1.5x',
      met((speedup.get(`${cnn}/32/static`) ?? 0) >= 1.5),
    ],
  ];
  const md = [
    `### Exported formats: engine.run() throughput, the formats of a model taking turns in ${fmt(measureMs / MEASURE_WINDOWS / 1000, 2)} s windows (best of ${MEASURE_WINDOWS}), 1 intra-op thread`,
    '',
    table(['model', 'format (backend)', 'batch', 'calls/s', 'rows/s', 'µs per call', 'int8 vs fp32'], rows),
  ].join('\n');
  return { md, targets };
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
  console.log(standalone(await runInference(Number(values.ms))));
  console.log('');
  console.log(await runTraining());
}
