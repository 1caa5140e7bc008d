import { readdirSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { tfjsArtifacts } from '../../src/engine/tfjs-artifacts.js';

/**
 * Data and trained models shared by test/onnx-export.test.ts and the script that trains its
 * models once, scripts/build-test-fixtures.ts (`npm run build:test-fixtures`). The models
 * live under test/fixtures/trained/<name>/ as tfjs LayersModel files (model.json +
 * weights.bin, float32): the tests load them instead of training, so they do not depend on
 * the machine's speed.
 */
export const TRAINED_FIXTURES_DIR = new URL('../fixtures/trained/', import.meta.url);

/** The models scripts/build-test-fixtures.ts trains, by fixture folder name. */
export const TRAINED_FIXTURE_NAMES = ['clusters-cnn', 'digits-cnn', 'digits-static-mlp', 'digits-static-cnn'] as const;
export type TrainedFixtureName = (typeof TRAINED_FIXTURE_NAMES)[number];

/** Load test/fixtures/trained/<name>/ (model.json + weight shards) as a LayersModel. */
export async function loadTrainedModel(name: TrainedFixtureName): Promise<tfl.LayersModel> {
  const dir = new URL(`${name}/`, TRAINED_FIXTURES_DIR);
  const files = new Map<string, Uint8Array>();
  for (const file of readdirSync(dir)) files.set(file, readFileSync(new URL(file, dir)));
  return tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(files, 'model.json')));
}

/**
 * Gaussian clusters around fixed centres: a task the models learn in a few epochs. A larger
 * noise gives rows near the decision boundaries, where quantization error could flip top-1.
 */
export function clusters(classes: number, dims: number, rows: number, noise: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor2D; labels: number[] } {
  return tf.tidy(() => {
    const centers = tf.randomNormal([classes, dims], 0, 1, 'float32', 7);
    const labels = Array.from({ length: rows }, (_, i) => i % classes);
    const x = tf.add(tf.gather(centers, labels), tf.randomNormal([rows, dims], 0, noise, 'float32', seed)) as tf.Tensor2D;
    return { x, y: tf.cast(tf.oneHot(labels, classes), 'float32') as tf.Tensor2D, labels };
  });
}

/** Train on 400 cluster rows (noise 1, seed 11): Adam 0.01, batches of 32, no shuffling. */
export async function trainOnClusters(model: tfl.LayersModel, classes: number, dims: number, epochs = 15): Promise<void> {
  const { x, y } = clusters(classes, dims, 400, 1, 11);
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  await model.fit(x, y, { epochs, batchSize: 32, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
}

/** data/digits.csv: 1797 8x8 images (64 pixels, 0-16, scaled to [-1, 1]) and their labels. */
export function digits(): { x: Float32Array; labels: number[] } {
  const lines = readFileSync(new URL('../../data/digits.csv', import.meta.url), 'utf8').trim().split(/\r?\n/);
  const header = lines[0].split(',');
  const labelCol = header.indexOf('label');
  const x: number[] = [];
  const labels: number[] = [];
  for (const line of lines.slice(1)) {
    const cells = line.split(',').map(Number);
    labels.push(cells[labelCol]);
    x.push(...cells.filter((_, i) => i !== labelCol).map((v) => v / 8 - 1));
  }
  return { x: Float32Array.from(x), labels };
}
