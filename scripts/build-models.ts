/**
 * Build the demo model bundles in models/ with the training toolchain (`npm run build:models`):
 *
 *   digits MLP (data/digits.csv, specs/digits-mlp.json) -> models/digits (ONNX int8, static:
 *     QGemm with activation scales calibrated on the training split, see
 *     src/training/onnx/quantized-static.ts; faster than the dynamic per-row int8, which is
 *     built and checked but not shipped), models/digits-fp32 (ONNX float32),
 *     models/digits-tfjs (tfjs float32)
 *   digits CNN on 8x8x1 images (specs/digits-cnn.json) -> models/digits-cnn (ONNX int8,
 *     static, as the MLP; the dynamic per-row int8, with its convolution as MatMulInteger, is
 *     built and checked but not shipped), models/digits-cnn-fp32 (ONNX float32),
 *     models/digits-cnn-tfjs (tfjs float32, the trainable source)
 *   diabetes regression (data/diabetes.csv, specs/diabetes.json) -> models/diabetes (ONNX float32)
 *   breast cancer classifier (data/breast_cancer.csv, specs/breast-cancer.json) -> models/breast-cancer (ONNX int8)
 *
 * Every ONNX bundle also carries the float32 tfjs model it was exported from (source/model.json
 * and source/weights.bin, manifest `trainable`): on-device fine-tuning starts from it.
 *
 * Every bundle is evaluated through the real engines on its held-out test split and carries its
 * metrics, training history, learning curves (curves.svg) and drift reference. The script
 * checks the acceptance figures, writes test/fixtures/digits-sample.json (20 raw test rows,
 * two per class, that every shipped digits model classifies correctly, one at a time and as
 * one batch), and prints a metrics table.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { openModelSource } from '../src/bundle/index.js';
import { loadModel } from '../src/engine/index.js';
import {
  argmaxRows,
  enginePredict,
  EVAL_ENGINE_OPTIONS,
  readModelSpec,
  selectRows,
  standardizeLikeDaemon,
  trainPipeline,
  type TrainerEvent,
  type TrainPipelineResult,
  type Variant,
} from '../src/training/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = '1.0.0';
const MAX_MODELS_BYTES = 5 * 1024 * 1024;
const SAMPLE_ROWS_PER_CLASS = 2;

interface Job {
  title: string;
  data: string;
  label: string;
  spec: string;
  splitSeed: number;
  bundles: [Variant, string][];
  /** Built and checked in a temporary folder, not written to models/. */
  notShipped?: string[];
  description: string;
}

const JOBS: Job[] = [
  {
    title: 'digits MLP',
    data: 'data/digits.csv',
    label: 'label',
    spec: 'specs/digits-mlp.json',
    splitSeed: 1,
    bundles: [
      ['onnx-int8-static', 'digits'],
      ['onnx-fp32', 'digits-fp32'],
      ['tfjs', 'digits-tfjs'],
      ['onnx-int8', 'digits-int8-dynamic'],
    ],
    notShipped: ['digits-int8-dynamic'],
    description: 'Handwritten digit classifier (8x8, 0-16 pixels), 64-64-32-10 MLP',
  },
  {
    title: 'digits CNN',
    data: 'data/digits.csv',
    label: 'label',
    spec: 'specs/digits-cnn.json',
    splitSeed: 1,
    bundles: [
      ['onnx-int8-static', 'digits-cnn'],
      ['onnx-fp32', 'digits-cnn-fp32'],
      ['tfjs', 'digits-cnn-tfjs'],
      ['onnx-int8', 'digits-cnn-int8-dynamic'],
    ],
    notShipped: ['digits-cnn-int8-dynamic'],
    description: 'Handwritten digit classifier, CNN on 8x8x1 images (rows of 64 pixels, or nested 8x8)',
  },
  {
    title: 'diabetes regression',
    data: 'data/diabetes.csv',
    label: 'target',
    spec: 'specs/diabetes.json',
    splitSeed: 1,
    bundles: [['onnx-fp32', 'diabetes']],
    description: 'Diabetes progression one year after baseline (10 standardised baseline variables), MLP regressor',
  },
  {
    title: 'breast cancer',
    data: 'data/breast_cancer.csv',
    label: 'label',
    spec: 'specs/breast-cancer.json',
    splitSeed: 1,
    bundles: [['onnx-int8', 'breast-cancer']],
    description: 'Breast cancer (Wisconsin diagnostic) classifier: 30 cell-nucleus measurements -> 0 malignant, 1 benign',
  },
];

const QUANT: Record<Variant, string> = { tfjs: 'tfjs float32', 'tfjs-float16': 'tfjs float16', 'tfjs-uint8': 'tfjs uint8', 'onnx-fp32': 'onnx float32', 'onnx-int8': 'onnx int8 (dynamic)', 'onnx-int8-static': 'onnx int8 (static)' };

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`acceptance check failed: ${what}`);
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? await dirBytes(p) : (await fs.stat(p)).size;
  }
  return total;
}

function logEpochs(title: string): (e: TrainerEvent) => void {
  return (e) => {
    if (e.type === 'backend') process.stderr.write(`${title}: training on tfjs '${e.backend}'${e.skipped.length ? ` (skipped ${e.skipped.join('; ')})` : ''}\n`);
    if (e.type === 'epoch-end' && (e.record.epoch % 10 === 0 || e.record.epoch === 1)) process.stderr.write(`${title}: epoch ${e.record.epoch} ${Object.entries(e.record.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' ')}\n`);
    if (e.type === 'stopped') process.stderr.write(`${title}: ${e.reason}; keeping epoch ${e.bestEpoch}\n`);
  };
}

async function train(job: Job, scratch: string): Promise<TrainPipelineResult> {
  return trainPipeline({
    data: path.join(ROOT, job.data),
    label: job.label,
    spec: await readModelSpec(path.join(ROOT, job.spec)),
    splitSeed: job.splitSeed,
    version: VERSION,
    description: job.description,
    targets: job.bundles.map(([variant, name]) => ({ variant, name, dir: job.notShipped?.includes(name) ? path.join(scratch, name) : path.join(ROOT, 'models', name) })),
    overwrite: true,
    onEvent: logEpochs(job.title),
  });
}

/**
 * Raw test rows, two per class, that every shipped digits model classifies correctly, both one
 * row per run (as a lone request) and all rows in one batch; checked with the real engines.
 */
async function digitsFixture(mlp: TrainPipelineResult, bundles: string[]): Promise<{ rows: number[][]; labels: number[] }> {
  const ds = mlp.prepared.dataset;
  const test = mlp.prepared.split.test;
  const raw = selectRows(ds.x, 64, test);
  const correct = test.map(() => true);
  for (const dir of bundles) {
    const { manifest, engine } = await loadModel(await openModelSource(dir), EVAL_ENGINE_OPTIONS);
    const predict = enginePredict(engine);
    const x = standardizeLikeDaemon(raw, manifest.preprocessing.standardize);
    const batch = argmaxRows(await predict(x, test.length), 10);
    for (let i = 0; i < test.length; i++) {
      const one = argmaxRows(await predict(x.subarray(i * 64, (i + 1) * 64), 1), 10)[0];
      const truth = Number(ds.classes![ds.y[test[i]]]);
      if (batch[i] !== truth || one !== truth) correct[i] = false;
    }
    await engine.dispose();
  }
  const picked = new Map<number, number[]>();
  test.forEach((r, i) => {
    const label = Number(ds.classes![ds.y[r]]);
    const list = picked.get(label) ?? [];
    if (correct[i] && list.length < SAMPLE_ROWS_PER_CLASS) picked.set(label, [...list, i]);
  });
  const sample = [...picked.entries()].sort(([a], [b]) => a - b).flatMap(([, idx]) => idx);
  if (sample.length !== 10 * SAMPLE_ROWS_PER_CLASS) throw new Error('not enough test rows every digits model gets right for the fixture');
  return { rows: sample.map((i) => Array.from(raw.subarray(i * 64, (i + 1) * 64))), labels: sample.map((i) => Number(ds.classes![ds.y[test[i]]])) };
}

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  const results = new Map<string, TrainPipelineResult>();
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'edgeloop-build-models-'));
  try {
    for (const job of JOBS) results.set(job.title, await train(job, scratch));
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }

  const rows: string[][] = [];
  for (const [title, r] of results) {
    for (const b of r.bundles) {
      const m = b.metrics as { modelBytes: number; test: Record<string, number>; vsFloat32: Record<string, number> };
      const score = b.evaluation.task === 'classification' ? `accuracy ${m.test.accuracy.toFixed(4)}` : `R² ${m.test.r2.toFixed(4)}, RMSE ${m.test.rmse.toFixed(1)}`;
      const change = m.vsFloat32.accuracyChange ?? m.vsFloat32.r2Change;
      const shipped = b.target.dir.startsWith(path.join(ROOT, 'models'));
      rows.push([shipped ? b.manifest.name : `(${b.manifest.name}, not shipped)`, title, QUANT[b.target.variant], `${(m.modelBytes / 1024).toFixed(1)} KiB`, score, `${m.test.rows}`, `${change >= 0 ? '+' : ''}${change.toFixed(4)}`, m.vsFloat32.top1Agreement === undefined ? '-' : m.vsFloat32.top1Agreement.toFixed(4), m.vsFloat32.maxAbsDiff.toExponential(1), `${r.summary.backend}, ${r.summary.epochsRun} epochs`]);
    }
  }
  const header = ['bundle', 'model', 'format', 'size', 'test split', 'rows', 'vs float32', 'top-1 agreement', 'max abs diff', 'trained on'];
  console.log(`| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);

  // Acceptance figures of issue 3.
  const mlp = results.get('digits MLP')!;
  const cnn = results.get('digits CNN')!;
  const acc = (r: TrainPipelineResult, v: Variant) => (r.bundles.find((b) => b.target.variant === v)!.metrics.test as { accuracy: number }).accuracy;
  const vs = (r: TrainPipelineResult, v: Variant) => r.bundles.find((b) => b.target.variant === v)!.metrics.vsFloat32 as { maxAbsDiff: number; top1Agreement: number };
  const INT8 = ['onnx-int8', 'onnx-int8-static'] as const;
  for (const v of ['onnx-fp32', 'tfjs', ...INT8] as const) check(acc(mlp, v) >= 0.95, `digits MLP ${v} test accuracy ${acc(mlp, v)} >= 0.95`);
  for (const v of INT8) check(Math.abs(acc(mlp, v) - acc(mlp, 'onnx-fp32')) <= 0.01, `digits ${v} ONNX within 1 point of fp32`);
  for (const v of ['onnx-fp32', 'tfjs', ...INT8] as const) check(acc(cnn, v) >= 0.97, `digits CNN ${v} test accuracy ${acc(cnn, v)} >= 0.97`);
  for (const v of INT8) check(Math.abs(acc(cnn, v) - acc(cnn, 'onnx-fp32')) <= 0.01, `digits CNN ${v} ONNX within 1 point of fp32`);
  for (const r of [mlp, cnn]) check(vs(r, 'onnx-fp32').maxAbsDiff <= 1e-4, 'ONNX fp32 within 1e-4 of tfjs');
  for (const r of [mlp, cnn]) for (const v of INT8) check(vs(r, v).top1Agreement >= 0.99, `${v} top-1 agreement >= 99%`);
  // Issue 10: every ONNX bundle carries its trainable float32 source for on-device fine-tuning.
  for (const r of results.values()) for (const b of r.bundles) if (b.manifest.runtime === 'onnx') check(b.manifest.trainable?.entry === 'source/model.json' && b.manifest.artifacts.some((a) => a.path === b.manifest.trainable!.entry), `${b.manifest.name} carries its trainable source`);
  const diabetes = results.get('diabetes regression')!.evaluation;
  check(diabetes.task === 'regression' && diabetes.metrics.r2 >= 0.4, 'diabetes R² >= 0.40');

  const fixture = await digitsFixture(mlp, ['digits', 'digits-fp32', 'digits-tfjs', 'digits-cnn', 'digits-cnn-fp32', 'digits-cnn-tfjs'].map((n) => path.join(ROOT, 'models', n)));
  await fs.mkdir(path.join(ROOT, 'test/fixtures'), { recursive: true });
  await fs.writeFile(path.join(ROOT, 'test/fixtures/digits-sample.json'), JSON.stringify(fixture) + '\n');

  const bytes = await dirBytes(path.join(ROOT, 'models'));
  check(bytes <= MAX_MODELS_BYTES, `models/ is ${bytes} bytes, at most ${MAX_MODELS_BYTES}`);
  console.log(`\nwrote ${rows.filter((r) => !r[0].startsWith('(')).length} bundles in models/ (${(bytes / 1024).toFixed(0)} KiB) and test/fixtures/digits-sample.json`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
