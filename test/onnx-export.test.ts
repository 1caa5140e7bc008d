import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportToOnnx } from '../src/training/onnx/export-onnx.js';

type Model = tfl.LayersModel;

/**
 * Gaussian clusters around fixed centres: a task the models learn in a few epochs. A larger
 * noise gives rows near the decision boundaries, where quantization error could flip top-1.
 */
function clusters(classes: number, dims: number, rows: number, noise: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor2D; labels: number[] } {
  return tf.tidy(() => {
    const centers = tf.randomNormal([classes, dims], 0, 1, 'float32', 7);
    const labels = Array.from({ length: rows }, (_, i) => i % classes);
    const x = tf.add(tf.gather(centers, labels), tf.randomNormal([rows, dims], 0, noise, 'float32', seed)) as tf.Tensor2D;
    return { x, y: tf.cast(tf.oneHot(labels, classes), 'float32') as tf.Tensor2D, labels };
  });
}

async function train(model: Model, classes: number, dims: number, epochs = 15): Promise<void> {
  const { x, y } = clusters(classes, dims, 400, 1, 11);
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  await model.fit(x, y, { epochs, batchSize: 32, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
}

async function runOnnx(bytes: Uint8Array, x: tf.Tensor2D): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
  const result: Record<string, Float32Array> = {};
  for (const name of session.outputNames) result[name] = out[name].data as Float32Array;
  await session.release();
  return result;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmaxRows(values: ArrayLike<number>, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length / cols; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c] > values[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

function agreement(a: number[], b: number[]): number {
  return a.filter((v, i) => v === b[i]).length / a.length;
}

/**
 * Export in every mode and compare with tfjs: fp32 numerically on random inputs, int8 by top-1
 * agreement on held-out rows that are noisier than the training rows (so some sit near a
 * decision boundary) and by a bound on the probability error.
 */
async function checkModel(model: Model, classes: number, dims: number): Promise<void> {
  const random = tf.randomNormal([50, dims], 0, 1, 'float32', 3) as tf.Tensor2D;
  const expected = (model.predict(random) as tf.Tensor).dataSync();
  const fp32 = await runOnnx(exportToOnnx(model, { quantize: 'float32' }), random);
  expect(maxAbsDiff(fp32.probabilities, expected)).toBeLessThan(1e-4);

  const held = clusters(classes, dims, 300, 2, 12);
  const probs = (model.predict(held.x) as tf.Tensor).dataSync();
  const reference = argmaxRows(probs, classes);
  expect(agreement(reference, held.labels), 'tfjs accuracy on held-out rows').toBeGreaterThan(0.6);
  for (const weightType of ['uint8', 'int8'] as const) {
    const bytes = exportToOnnx(model, { quantize: 'int8', weightType });
    const int8 = await runOnnx(bytes, held.x);
    expect(agreement(argmaxRows(int8.probabilities, classes), reference), `int8 (${weightType} weights)`).toBeGreaterThanOrEqual(0.95);
    expect(maxAbsDiff(int8.probabilities, probs)).toBeLessThan(0.25);
    expect(maxAbsDiff(int8.probabilities, probs), 'int8 must really be quantized').toBeGreaterThan(0);
  }
  tf.dispose([random, held.x, held.y]);
}

describe('exportToOnnx', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('exports a dense MLP with an embedding output', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [16], units: 32, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
        tfl.layers.dense({ units: 16, activation: 'tanh', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
        tfl.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
      ],
    });
    await train(model, 4, 16);
    await checkModel(model, 4, 16);

    const { x, y } = clusters(4, 16, 50, 1, 13);
    const embeddingModel = tfl.model({ inputs: model.inputs, outputs: model.layers[1].output as tfl.SymbolicTensor });
    const both = await runOnnx(exportToOnnx(model, { quantize: 'float32', embeddingOutput: true }), x);
    expect(maxAbsDiff(both.embedding, (embeddingModel.predict(x) as tf.Tensor).dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(both.probabilities, (model.predict(x) as tf.Tensor).dataSync())).toBeLessThan(1e-4);
    const quantized = await runOnnx(exportToOnnx(model, { quantize: 'int8', embeddingOutput: true }), x);
    expect(maxAbsDiff(quantized.embedding, both.embedding)).toBeLessThan(0.1);
    tf.dispose([x, y]);
  });

  it('exports a CNN (reshape, conv2d valid/same, batchnorm, maxpool, flatten, dense)', async () => {
    const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
    const model = tfl.sequential({
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
    });
    await train(model, 5, 64, 3);
    await checkModel(model, 5, 64);
  }, 20_000);

  it('exports batchnorm and dropout on dense layers', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [12], units: 24, kernelInitializer: tfl.initializers.glorotUniform({ seed: 8 }) }),
        tfl.layers.batchNormalization({}),
        tfl.layers.activation({ activation: 'relu' }),
        tfl.layers.dropout({ rate: 0.3 }),
        tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 9 }) }),
      ],
    });
    await train(model, 3, 12);
    await checkModel(model, 3, 12);
  });

  it('maps every supported activation and pooling variant (fp32, untrained)', async () => {
    const random = tf.randomNormal([50, 64], 0, 2, 'float32', 5) as tf.Tensor2D;
    const activations = ['relu6', 'sigmoid', 'hardSigmoid', 'tanh', 'elu', 'selu', 'softplus', 'softsign', 'swish', 'logSoftmax', 'linear'];
    for (const name of activations) {
      const model = tfl.sequential({
        layers: [
          tfl.layers.dense({ inputShape: [64], units: 8, kernelInitializer: tfl.initializers.glorotUniform({ seed: 10 }) }),
          tfl.layers.activation({ activation: name as 'relu' }),
        ],
      });
      const out = await runOnnx(exportToOnnx(model, { quantize: 'float32', outputName: 'output' }), random);
      expect(maxAbsDiff(out.output, (model.predict(random) as tf.Tensor).dataSync()), name).toBeLessThan(1e-4);
    }
    const cnn = tfl.sequential({
      layers: [
        tfl.layers.reshape({ inputShape: [64], targetShape: [8, 8, 1] }),
        tfl.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 11 }) }),
        tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same' }),
        tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
        tfl.layers.globalAveragePooling2d({}),
        tfl.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 12 }) }),
      ],
    });
    const out = await runOnnx(exportToOnnx(cnn, { quantize: 'float32' }), random);
    expect(maxAbsDiff(out.probabilities, (cnn.predict(random) as tf.Tensor).dataSync())).toBeLessThan(1e-4);
    random.dispose();
  });

  it('int8: a row gets the same answer whatever else is in its batch', async () => {
    const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
    // Standardised-feature models: signed inputs (first layer), then non-negative ones after relu.
    const mlp = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [64], units: 32, activation: 'relu', kernelInitializer: init(21) }),
        tfl.layers.dense({ units: 16, activation: 'tanh', kernelInitializer: init(22) }),
        tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(23) }),
      ],
    });
    const cnn = tfl.sequential({
      layers: [
        tfl.layers.reshape({ inputShape: [64], targetShape: [8, 8, 1] }),
        tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(24) }),
        tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(25) }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(26) }),
      ],
    });
    const rows = tf.randomNormal([8, 64], 0, 1, 'float32', 31) as tf.Tensor2D;
    const data = rows.dataSync() as Float32Array;
    // Row 3 is an outlier: one feature at 90 (a per-batch activation range would coarsen every row).
    const withOutlier = data.slice();
    withOutlier[3 * 64 + 17] = 90;
    const zeros = new Float32Array(64);
    for (const model of [mlp, cnn]) {
      for (const weightType of ['uint8', 'int8'] as const) {
        const session = await ort.InferenceSession.create(exportToOnnx(model, { quantize: 'int8', weightType }));
        const run = async (x: Float32Array) => (await session.run({ input: new ort.Tensor('float32', x, [x.length / 64, 64]) })).probabilities.data as Float32Array;
        const batched = await run(withOutlier);
        const reversed = await run(Float32Array.from({ length: 8 * 64 }, (_, i) => withOutlier[(7 - Math.floor(i / 64)) * 64 + (i % 64)]));
        for (const r of [0, 1, 2, 4, 5, 6, 7]) {
          const alone = await run(data.slice(r * 64, (r + 1) * 64));
          const label = `${model.layers.length}-layer model, ${weightType} weights, row ${r}`;
          expect(maxAbsDiff(alone, batched.slice(r * 10, (r + 1) * 10)), label).toBe(0);
          expect(maxAbsDiff(alone, reversed.slice((7 - r) * 10, (8 - r) * 10)), `${label} (reversed batch)`).toBe(0);
        }
        // An all-zero row next to the outlier: finite, and again the same as when run alone.
        const zeroRow = await run(zeros);
        expect(zeroRow.every(Number.isFinite)).toBe(true);
        const pair = Float32Array.from([...zeros, ...withOutlier.slice(3 * 64, 4 * 64)]);
        expect(maxAbsDiff(zeroRow, (await run(pair)).slice(0, 10))).toBe(0);
        await session.release();
      }
    }
    rows.dispose();
  });

  it('names the class of an unsupported layer', () => {
    const model = tfl.sequential({ layers: [tfl.layers.conv1d({ inputShape: [8, 2], filters: 2, kernelSize: 2 }), tfl.layers.flatten()] });
    expect(() => exportToOnnx(model, { quantize: 'float32' })).toThrow(/Conv1D/);
  });
});
