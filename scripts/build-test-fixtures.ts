/**
 * Train the models test/onnx-export.test.ts checks, once, and save them under
 * test/fixtures/trained/<name>/ as tfjs LayersModel files (model.json + weights.bin, float32
 * weights, so a loaded model predicts exactly what the trained one did). The tests load them
 * (test/helpers/trained-fixtures.ts) instead of training, which took over a minute on 2 cores.
 *
 * Regenerate (after changing an architecture or its training below, or the data):
 *
 *   npm run build:test-fixtures
 *
 * then run `npx vitest run test/onnx-export.test.ts` and commit test/fixtures/trained/.
 *
 *   clusters-cnn       reshape, conv2d same/valid, batchnorm, elu, maxpool, flatten, dense;
 *                      5 Gaussian clusters in 64 dims (400 rows, seed 11), 3 epochs
 *   digits-cnn         conv2d same (8), maxpool, conv2d same stride 2 (16), conv2d valid (32),
 *                      flatten, dense; the first 1200 rows of data/digits.csv, 8 epochs
 *   digits-static-mlp  dense 64 relu, 32 relu, 10 softmax; first 1200 digits, 8 epochs
 *   digits-static-cnn  conv2d (8), maxpool, conv2d (16), maxpool, flatten, dropout 0.2,
 *                      dense 32, dense 10; first 1200 digits, 8 epochs
 *
 * Everything is seeded: glorot initializers, the cluster data, no shuffling, the tfjs CPU
 * backend, and Math.random (the only source of the dropout masks, which tfjs draws unseeded)
 * is replaced by a seeded generator while a model trains; running it twice writes the same
 * bytes.
 */
import { prng } from '../src/training/data/split.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { saveTfjsArtifacts } from '../src/training/tfjs-export.js';
import { digits, TRAINED_FIXTURES_DIR, trainOnClusters, type TrainedFixtureName } from '../test/helpers/trained-fixtures.js';

/** Rows of data/digits.csv the digits models train on (the rest is the tests' held-out split). */
const DIGITS_TRAIN_ROWS = 1200;

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });


async function trainOnDigits(model: tfl.LayersModel): Promise<void> {
  const { x, labels } = digits();
  const xTrain = tf.tensor2d(x.subarray(0, DIGITS_TRAIN_ROWS * 64), [DIGITS_TRAIN_ROWS, 64]);
  const yTrain = tf.cast(tf.oneHot(labels.slice(0, DIGITS_TRAIN_ROWS), 10), 'float32');
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  await model.fit(xTrain, yTrain, { epochs: 8, batchSize: 32, shuffle: false, verbose: 0 });
  tf.dispose([xTrain, yTrain]);
}

const FIXTURES: Record<TrainedFixtureName, { build: () => tfl.LayersModel; train: (m: tfl.LayersModel) => Promise<void> }> = {
  'clusters-cnn': {
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.reshape({ inputShape: [64], targetShape: [8, 8, 1] }),
          tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(4) }),
          tfl.layers.batchNormalization({}),
          tfl.layers.conv2d({ filters: 4, kernelSize: 2, padding: 'same', kernelInitializer: init(5) }),
          tfl.layers.activation({ activation: 'elu' }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(6) }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 5, activation: 'softmax', kernelInitializer: init(7) }),
        ],
      }),
    train: (m) => trainOnClusters(m, 5, 64, 3),
  },
  'digits-cnn': {
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.reshape({ inputShape: [64], targetShape: [8, 8, 1] }),
          tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(61) }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(62) }),
          tfl.layers.conv2d({ filters: 32, kernelSize: 2, padding: 'valid', activation: 'relu', kernelInitializer: init(63) }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(64) }),
        ],
      }),
    train: trainOnDigits,
  },
  'digits-static-mlp': {
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.dense({ inputShape: [64], units: 64, activation: 'relu', kernelInitializer: init(71) }),
          tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(72) }),
          tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(73) }),
        ],
      }),
    train: trainOnDigits,
  },
  'digits-static-cnn': {
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.reshape({ inputShape: [64], targetShape: [8, 8, 1] }),
          tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(74) }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(75) }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.flatten(),
          tfl.layers.dropout({ rate: 0.2 }),
          tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(76) }),
          tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(77) }),
        ],
      }),
    train: trainOnDigits,
  },
};

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const random = Math.random;
  for (const [name, { build, train }] of Object.entries(FIXTURES)) {
    const started = Date.now();
    const model = build();
    Math.random = prng(1);
    try {
      await train(model);
    } finally {
      Math.random = random;
    }
    const files = await saveTfjsArtifacts(model, { quantize: 'float32' });
    const dir = new URL(`${name}/`, TRAINED_FIXTURES_DIR);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let bytes = 0;
    for (const [file, data] of files) {
      writeFileSync(new URL(file, dir), data);
      bytes += data.length;
    }
    console.log(`${name}: ${model.countParams()} parameters, ${(bytes / 1024).toFixed(1)} kB, trained in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    model.dispose();
  }
}

await main();
