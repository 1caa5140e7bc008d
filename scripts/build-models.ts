/**
 * Build the demo model bundles from data/digits.csv (run with `npm run build:models`):
 * trains a 64-64-32-10 tfjs MLP with a fixed seed, exports it as int8 ONNX (models/digits),
 * float32 ONNX (models/digits-fp32) and float32 tfjs (models/digits-tfjs), evaluates every
 * exported variant on the held-out split, and writes test/fixtures/digits-sample.json.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { writeBundle, type BundleDraft, type TensorSpec } from '../src/bundle/index.js';
import { exportToOnnx } from '../src/training/onnx/export-onnx.js';
import { tfjsArtifacts } from '../src/engine/index.js';
import { saveTfjsArtifacts } from '../src/training/tfjs-export.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATASET = 'data/digits.csv';
const SEED = 1797;
const EPOCHS = 35;
const BATCH_SIZE = 32;
const LEARNING_RATE = 0.01;
const TEST_FRACTION = 0.2;
const MIN_ACCURACY = 0.95;
const MAX_MODELS_BYTES = 1024 * 1024;
const SAMPLE_ROWS_PER_CLASS = 2;
const LABELS = Array.from({ length: 10 }, (_, i) => String(i));

/** mulberry32: a tiny seeded PRNG, so the split and the epoch order are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

async function readCsv(file: string): Promise<{ rows: number[][]; labels: number[] }> {
  const lines = (await fs.readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0].split(',');
  if (header.at(-1) !== 'label' || header.length !== 65) throw new Error(`${file}: expected 64 pixel columns and 'label'`);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (const line of lines.slice(1)) {
    const values = line.split(',').map(Number);
    if (values.length !== 65 || values.some((v) => !Number.isFinite(v))) throw new Error(`${file}: malformed row '${line.slice(0, 40)}…'`);
    labels.push(values.pop()!);
    rows.push(values);
  }
  return { rows, labels };
}

/** Per-class shuffled 80/20 split, so both sides keep the class balance. */
function stratifiedSplit(labels: number[], rand: () => number): { train: number[]; test: number[] } {
  const train: number[] = [];
  const test: number[] = [];
  for (const label of [...new Set(labels)].sort((a, b) => a - b)) {
    const idx = shuffle(labels.flatMap((l, i) => (l === label ? [i] : [])), rand);
    const nTest = Math.round(idx.length * TEST_FRACTION);
    test.push(...idx.slice(0, nTest));
    train.push(...idx.slice(nTest));
  }
  return { train: shuffle(train, rand), test: test.sort((a, b) => a - b) };
}

function standardizer(rows: number[][]): { mean: number[]; std: number[] } {
  const n = rows.length;
  const mean = rows[0].map((_, j) => rows.reduce((s, r) => s + r[j], 0) / n);
  // A constant pixel (always 0 in the corners) gets std 1, so it maps to 0 instead of NaN.
  const std = mean.map((m, j) => Math.sqrt(rows.reduce((s, r) => s + (r[j] - m) ** 2, 0) / n) || 1);
  return { mean, std };
}

function buildModel(): tfl.Sequential {
  const init = (offset: number) => tfl.initializers.glorotUniform({ seed: SEED + offset });
  return tfl.sequential({
    name: 'digits_mlp',
    layers: [
      tfl.layers.dense({ inputShape: [64], units: 64, activation: 'relu', kernelInitializer: init(1) }),
      tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(2) }),
      tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
}

function argmax(values: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (values[offset + c] > values[offset + best]) best = c;
  return best;
}

async function predictOnnx(bytes: Uint8Array, x: number[][]): Promise<number[]> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.flat()), [x.length, 64]) });
  await session.release();
  const probs = out.probabilities.data as Float32Array;
  return x.map((_, r) => argmax(probs, r * 10, 10));
}

/** int8 ONNX quantizes activations per batch; also score it one row per run, as a lone request is served. */
async function predictOnnxPerRow(bytes: Uint8Array, x: number[][]): Promise<number[]> {
  const session = await ort.InferenceSession.create(bytes);
  const out: number[] = [];
  for (const row of x) {
    const result = await session.run({ input: new ort.Tensor('float32', Float32Array.from(row), [1, 64]) });
    out.push(argmax(result.probabilities.data as Float32Array, 0, 10));
  }
  await session.release();
  return out;
}

function predictTfjs(model: tfl.LayersModel, x: number[][]): number[] {
  return tf.tidy(() => Array.from((tf.argMax(model.predict(tf.tensor2d(x)) as tf.Tensor, -1) as tf.Tensor).dataSync()));
}

const accuracy = (pred: number[], truth: number[]): number => pred.filter((p, i) => p === truth[i]).length / truth.length;

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? await dirBytes(p) : (await fs.stat(p)).size;
  }
  return total;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const rand = prng(SEED);
  const data = await readCsv(path.join(ROOT, DATASET));
  const split = stratifiedSplit(data.labels, rand);
  const { mean, std } = standardizer(split.train.map((i) => data.rows[i]));
  const scale = (row: number[]): number[] => row.map((v, j) => (v - mean[j]) / std[j]);
  const trainX = split.train.map((i) => scale(data.rows[i]));
  const trainY = split.train.map((i) => data.labels[i]);
  const testX = split.test.map((i) => scale(data.rows[i]));
  const testY = split.test.map((i) => data.labels[i]);

  const model = buildModel();
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  // tfjs's own `shuffle` uses Math.random; reorder each epoch with the seeded PRNG instead.
  const order = trainX.map((_, i) => i);
  let lastLoss = NaN;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    shuffle(order, rand);
    const x = tf.tensor2d(order.map((i) => trainX[i]));
    const y = tf.oneHot(tf.tensor1d(order.map((i) => trainY[i]), 'int32'), 10);
    const history = await model.fit(x, y, { epochs: 1, batchSize: BATCH_SIZE, shuffle: false, verbose: 0 });
    lastLoss = history.history.loss[0] as number;
    tf.dispose([x, y]);
  }
  const trainAccuracy = accuracy(predictTfjs(model, trainX), trainY);

  const int8Onnx = exportToOnnx(model, { quantize: 'int8', embeddingOutput: true });
  const fp32Onnx = exportToOnnx(model, { quantize: 'float32', embeddingOutput: true });
  const tfjsFiles = await saveTfjsArtifacts(model, { quantize: 'float32' });
  const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(tfjsFiles, 'model.json')));

  const predictions = {
    digits: await predictOnnx(int8Onnx, testX),
    'digits-fp32': await predictOnnx(fp32Onnx, testX),
    'digits-tfjs': predictTfjs(reloaded, testX),
  };
  const int8PerRow = await predictOnnxPerRow(int8Onnx, testX);
  const table = Object.entries(predictions).map(([name, pred]) => ({ bundle: name, testAccuracy: accuracy(pred, testY) }));
  console.log(`trained ${EPOCHS} epochs on ${trainX.length} rows: loss ${lastLoss.toFixed(4)}, train accuracy ${trainAccuracy.toFixed(4)}`);
  console.log('bundle        runtime  weights  test accuracy');
  const kinds: Record<string, string> = { digits: 'onnx     int8   ', 'digits-fp32': 'onnx     float32', 'digits-tfjs': 'tfjs     float32' };
  for (const row of table) console.log(`${row.bundle.padEnd(13)} ${kinds[row.bundle]}  ${row.testAccuracy.toFixed(4)} (${testY.length} rows)`);
  console.log(`digits (int8, one row per run): ${accuracy(int8PerRow, testY).toFixed(4)}; agrees with fp32 on ${(accuracy(int8PerRow, predictions['digits-fp32']) * 100).toFixed(1)}% of rows`);
  for (const row of table) if (row.testAccuracy < MIN_ACCURACY) throw new Error(`${row.bundle}: test accuracy ${row.testAccuracy} < ${MIN_ACCURACY}`);

  const common = {
    version: '1.0.0',
    task: 'classification',
    labels: LABELS,
    inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 64] }],
    outputKind: 'probabilities',
    preprocessing: { standardize: { mean, std } },
  } satisfies Partial<BundleDraft>;
  const probabilities: TensorSpec = { name: 'probabilities', dtype: 'float32', shape: [-1, 10] };
  const embedding: TensorSpec = { name: 'embedding', dtype: 'float32', shape: [-1, 32] };
  const training = {
    dataset: DATASET,
    seed: SEED,
    epochs: EPOCHS,
    batchSize: BATCH_SIZE,
    optimizer: 'adam',
    learningRate: LEARNING_RATE,
    architecture: 'dense 64 relu - dense 32 relu - dense 10 softmax',
    split: { test: TEST_FRACTION, stratified: true, trainRows: trainX.length, testRows: testX.length },
    finalLoss: lastLoss,
    trainAccuracy,
    framework: `tfjs-layers ${tfl.version_layers} (cpu backend)`,
  };
  const metrics = (name: keyof typeof predictions) => ({ testAccuracy: accuracy(predictions[name], testY), testRows: testY.length });
  const bundles: Array<[string, BundleDraft, Map<string, Uint8Array>]> = [
    ['digits', { ...common, name: 'digits', runtime: 'onnx', entry: 'model.onnx', quantization: 'int8', outputs: [probabilities, embedding], metrics: { ...metrics('digits'), testAccuracySingleRow: accuracy(int8PerRow, testY) }, training, description: 'Handwritten digit classifier (8x8, 0-16 pixels), int8 dynamic-quantized ONNX; second output: 32-d embedding.' }, new Map([['model.onnx', int8Onnx]])],
    ['digits-fp32', { ...common, name: 'digits-fp32', runtime: 'onnx', entry: 'model.onnx', quantization: 'float32', outputs: [probabilities, embedding], metrics: metrics('digits-fp32'), training, description: 'Handwritten digit classifier (8x8, 0-16 pixels), float32 ONNX; second output: 32-d embedding.' }, new Map([['model.onnx', fp32Onnx]])],
    ['digits-tfjs', { ...common, name: 'digits-tfjs', runtime: 'tfjs', entry: 'model.json', quantization: 'float32', outputs: [probabilities], metrics: metrics('digits-tfjs'), training, description: 'Handwritten digit classifier (8x8, 0-16 pixels), float32 tfjs LayersModel.' }, tfjsFiles],
  ];
  for (const [dir, draft, files] of bundles) await writeBundle(path.join(ROOT, 'models', dir), draft, files, { overwrite: true });

  // Sample rows every variant gets right, also when the int8 model sees them one at a time.
  const perClass = new Map<number, number[]>();
  testY.forEach((label, i) => {
    const ok = Object.values(predictions).every((p) => p[i] === label) && int8PerRow[i] === label;
    const picked = perClass.get(label) ?? [];
    if (ok && picked.length < SAMPLE_ROWS_PER_CLASS) perClass.set(label, [...picked, i]);
  });
  const sample = [...perClass.entries()].sort(([a], [b]) => a - b).flatMap(([, idx]) => idx);
  if (sample.length !== 10 * SAMPLE_ROWS_PER_CLASS) throw new Error('not enough correctly classified test rows for the fixture');
  const sampleX = sample.map((i) => testX[i]);
  const sampleY = sample.map((i) => testY[i]);
  if (accuracy(await predictOnnx(int8Onnx, sampleX), sampleY) !== 1) throw new Error('int8 model misclassifies the fixture rows as one batch');
  const fixture = { rows: sample.map((i) => data.rows[split.test[i]]), labels: sampleY };
  await fs.mkdir(path.join(ROOT, 'test/fixtures'), { recursive: true });
  await fs.writeFile(path.join(ROOT, 'test/fixtures/digits-sample.json'), JSON.stringify(fixture) + '\n');

  const modelsBytes = await dirBytes(path.join(ROOT, 'models'));
  if (modelsBytes > MAX_MODELS_BYTES) throw new Error(`models/ is ${modelsBytes} bytes, over ${MAX_MODELS_BYTES}`);
  console.log(`wrote models/digits, models/digits-fp32, models/digits-tfjs (${(modelsBytes / 1024).toFixed(1)} KiB) and test/fixtures/digits-sample.json`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
