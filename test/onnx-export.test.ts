import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportVariant } from '../src/training/export/variants.js';
import { exportToOnnx, type ExportOnnxOptions } from '../src/training/onnx/export-onnx.js';
import { clusters, digits, loadTrainedModel, trainOnClusters } from './helpers/trained-fixtures.js';

type Model = tfl.LayersModel;

/*
 * The models that take more than a moment to train (the clusters CNN, the digits CNN and the
 * int8-static digits MLP and CNN) were trained once by scripts/build-test-fixtures.ts
 * (`npm run build:test-fixtures`, which lists their architectures and training) and are
 * loaded from test/fixtures/trained/; the small dense models still train here, in about a
 * second.
 */

async function runOnnx(bytes: Uint8Array, x: tf.Tensor): Promise<Record<string, Float32Array>> {
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

/** Op types of an exported graph, with their counts. */
function opCounts(bytes: Uint8Array): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of onnxProto.onnx.ModelProto.decode(bytes).graph!.node!) counts.set(node.opType!, (counts.get(node.opType!) ?? 0) + 1);
  return counts;
}

/** int8 export options that quantize every Conv2D, with the given lowering. */
const allConvsInt8 = (lowering: 'dense' | 'im2col'): Partial<ExportOnnxOptions> => ({ minInt8ConvDepth: 0, int8ConvLowering: lowering });

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
    await trainOnClusters(model, 4, 16);
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
    // Trained 3 epochs on 5 clusters in 64 dims (trainOnClusters) by scripts/build-test-fixtures.ts.
    const model = await loadTrainedModel('clusters-cnn');
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
    await trainOnClusters(model, 3, 12);
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
    // Every int8 convolution path: signed and non-negative inputs, 'same' and 'valid', strides,
    // a folded max pooling and an overlapping (unfolded) one.
    const strided = tfl.sequential({
      layers: [
        tfl.layers.reshape({ inputShape: [64], targetShape: [8, 8, 1] }),
        tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(27) }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(28) }),
        tfl.layers.conv2d({ filters: 8, kernelSize: 1, padding: 'valid', activation: 'tanh', kernelInitializer: init(29) }),
        tfl.layers.maxPooling2d({ poolSize: 2, strides: 1, padding: 'same' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(30) }),
      ],
    });
    const cases: [string, tfl.LayersModel, Partial<ExportOnnxOptions>][] = [
      ['MLP', mlp, {}],
      ['CNN', cnn, {}],
      ['CNN, all convs int8, dense lowering', cnn, allConvsInt8('dense')],
      ['CNN, all convs int8, im2col lowering', cnn, allConvsInt8('im2col')],
      ['strided CNN, dense lowering', strided, allConvsInt8('dense')],
      ['strided CNN, im2col lowering', strided, allConvsInt8('im2col')],
    ];
    const rows = tf.randomNormal([8, 64], 0, 1, 'float32', 31) as tf.Tensor2D;
    const data = rows.dataSync() as Float32Array;
    // Row 3 is an outlier: one feature at 90 (a per-batch activation range would coarsen every row).
    const withOutlier = data.slice();
    withOutlier[3 * 64 + 17] = 90;
    const zeros = new Float32Array(64);
    // The same models as int8-static (fixed scales calibrated on other random rows; row 3's 90 is beyond them).
    const calibration = { rows: tf.randomNormal([200, 64], 0, 1, 'float32', 32).dataSync() as Float32Array, count: 200 };
    const staticCases: [string, tfl.LayersModel, Partial<ExportOnnxOptions>][] = [
      ['static MLP', mlp, {}],
      ['static CNN', cnn, {}],
      ...(['dense', 'im2col', 'qlinearconv', 'float'] as const).map((l): [string, tfl.LayersModel, Partial<ExportOnnxOptions>] => [`static strided CNN, ${l}`, strided, { staticConvLowering: l }]),
    ];
    for (const [name, model, opts] of [...cases, ...staticCases.map(([n, m, o]): [string, tfl.LayersModel, Partial<ExportOnnxOptions>] => [n, m, { quantize: 'int8-static', calibration, ...o }])]) {
      for (const weightType of ['uint8', 'int8'] as const) {
        const session = await ort.InferenceSession.create(exportToOnnx(model, { quantize: 'int8', weightType, ...opts }));
        const run = async (x: Float32Array) => (await session.run({ input: new ort.Tensor('float32', x, [x.length / 64, 64]) })).probabilities.data as Float32Array;
        const batched = await run(withOutlier);
        const reversed = await run(Float32Array.from({ length: 8 * 64 }, (_, i) => withOutlier[(7 - Math.floor(i / 64)) * 64 + (i % 64)]));
        for (const r of [0, 1, 2, 4, 5, 6, 7]) {
          const alone = await run(data.slice(r * 64, (r + 1) * 64));
          const label = `${name}, ${weightType} weights, row ${r}`;
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

  it('int8 convolutions run as MatMulInteger, channels-last: no ConvInteger, no Transpose', () => {
    const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
    // The digits CNN's architecture.
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(51) }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(52) }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(53) }),
        tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(54) }),
      ],
    });
    // Default: the 1-channel first layer (3x3x1 weights per output) stays a float Conv; the
    // second is one MatMulInteger with its max pooling folded in (a ReduceMax on int32).
    const ops = opCounts(exportToOnnx(model, { quantize: 'int8' }));
    expect(Object.fromEntries(['Conv', 'ConvInteger', 'MatMulInteger', 'Transpose', 'Gather', 'MaxPool'].map((op) => [op, ops.get(op) ?? 0]))).toEqual({ Conv: 1, ConvInteger: 0, MatMulInteger: 3, Transpose: 0, Gather: 0, MaxPool: 1 });
    for (const lowering of ['dense', 'im2col'] as const) {
      const all = opCounts(exportToOnnx(model, { quantize: 'int8', ...allConvsInt8(lowering) }));
      expect(all.get('MatMulInteger'), lowering).toBe(4);
      for (const op of ['Conv', 'ConvInteger', 'Transpose', 'MaxPool']) expect(all.get(op), `${lowering}: ${op}`).toBeUndefined();
      expect(all.get('Gather') ?? 0, lowering).toBe(lowering === 'im2col' ? 2 : 0);
    }
    // float32 is unchanged: float Conv and MaxPool, NCHW.
    expect(opCounts(exportToOnnx(model, { quantize: 'float32' })).get('Conv')).toBe(2);
  });

  it('int8: an unrolled convolution reading the NCHW output of a float one matches im2col bit for bit', async () => {
    const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(55) }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(56) }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(57) }),
      ],
    });
    const x = tf.randomNormal([16, 8, 8, 1], 0, 1, 'float32', 58);
    // 'dense' multiplies the float layer's NCHW output as is; 'im2col' transposes it first.
    const dense = exportToOnnx(model, { quantize: 'int8', int8ConvLowering: 'dense' });
    const im2col = exportToOnnx(model, { quantize: 'int8', int8ConvLowering: 'im2col' });
    expect(opCounts(dense).get('Transpose')).toBeUndefined();
    expect(opCounts(im2col).get('Transpose')).toBe(1);
    expect(maxAbsDiff((await runOnnx(dense, x)).probabilities, (await runOnnx(im2col, x)).probabilities)).toBe(0);
    x.dispose();
  });

  it("int8 convolutions: 'same' padding is exactly 0 (bit-identical to 'valid' on the zero-padded image), both lowerings agree", async () => {
    const [H, W, C] = [7, 6, 3];
    const x = tf.randomNormal([6, H, W, C], 0, 1, 'float32', 41);
    const geometries: [number, number][] = [
      [3, 1],
      [3, 2],
      [2, 1], // the odd padding cell goes at the end
      [4, 3],
    ];
    for (const [kernelSize, strides] of geometries) {
      // Signed input (zero point 128) and, after a relu, non-negative input (zero point 0).
      for (const relu of [false, true]) {
        const padsOf = (n: number) => {
          const total = Math.max((Math.ceil(n / strides) - 1) * strides + kernelSize - n, 0);
          return [Math.floor(total / 2), total - Math.floor(total / 2)];
        };
        const [[top, bottom], [left, right]] = [padsOf(H), padsOf(W)];
        const make = (shape: number[], padding: 'same' | 'valid') =>
          tfl.sequential({
            layers: [
              tfl.layers.activation({ inputShape: shape, activation: relu ? 'relu' : 'linear' }),
              tfl.layers.conv2d({ filters: 5, kernelSize, strides, padding, kernelInitializer: tfl.initializers.glorotUniform({ seed: 42 }), biasInitializer: tfl.initializers.randomNormal({ seed: 43 }) }),
            ],
          });
        const same = make([H, W, C], 'same');
        const valid = make([H + top + bottom, W + left + right, C], 'valid');
        valid.setWeights(same.getWeights());
        const padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
        const expected = (same.predict(x) as tf.Tensor).dataSync();
        expect(maxAbsDiff((valid.predict(padded) as tf.Tensor).dataSync(), expected)).toBeLessThan(1e-5);
        const label = `${kernelSize}x${kernelSize}, stride ${strides}, ${relu ? 'non-negative' : 'signed'} input`;
        const outputs: Float32Array[] = [];
        for (const lowering of ['dense', 'im2col'] as const) {
          const opts = { quantize: 'int8', outputName: 'output', ...allConvsInt8(lowering) } as const;
          const [a, b] = [(await runOnnx(exportToOnnx(same, opts), x)).output, (await runOnnx(exportToOnnx(valid, opts), padded)).output];
          expect(maxAbsDiff(a, b), `${label}, ${lowering}: 'same' vs padded 'valid'`).toBe(0);
          expect(maxAbsDiff(a, expected), `${label}, ${lowering}: vs tfjs`).toBeLessThan(0.05);
          expect(maxAbsDiff(a, expected), 'int8 must really be quantized').toBeGreaterThan(0);
          outputs.push(a);
        }
        expect(maxAbsDiff(outputs[0], outputs[1]), `${label}: dense vs im2col`).toBe(0);
        padded.dispose();
      }
    }
    x.dispose();
  }, 30_000);

  it('int8 CNN trained on digits (same/valid padding, strides, 1-32 channels): >= 99% top-1 agreement with tfjs', async () => {
    const { x, labels } = digits();
    const train = 1200;
    // reshape, conv2d same (8), maxpool, conv2d same stride 2 (16), conv2d valid 2x2 (32),
    // flatten, dense; trained 8 epochs on the first `train` digits by scripts/build-test-fixtures.ts.
    const model = await loadTrainedModel('digits-cnn');
    const held = tf.tensor2d(x.subarray(train * 64), [labels.length - train, 64]);
    const reference = argmaxRows((model.predict(held) as tf.Tensor).dataSync(), 10);
    expect(agreement(reference, labels.slice(train)), 'tfjs accuracy on held-out digits').toBeGreaterThan(0.9);
    const variants: [string, Partial<ExportOnnxOptions>][] = [
      ['default (float first layer)', {}],
      ['all convs int8, dense lowering', allConvsInt8('dense')],
      ['all convs int8, im2col lowering', allConvsInt8('im2col')],
      ['all convs int8, uint8 weights', { ...allConvsInt8('dense'), weightType: 'uint8' }],
    ];
    for (const [name, opts] of variants) {
      const int8 = await runOnnx(exportToOnnx(model, { quantize: 'int8', ...opts }), held);
      expect(agreement(argmaxRows(int8.probabilities, 10), reference), name).toBeGreaterThanOrEqual(0.99);
    }
    tf.dispose(held);
  }, 60_000);

  describe("int8-static (calibrated QLinear graph)", () => {
    /**
     * The digits MLP and CNN architectures (smaller), trained 8 epochs on the first 1200 digits
     * by scripts/build-test-fixtures.ts: dense 64-32-10, and conv2d (8), maxpool, conv2d (16),
     * maxpool, flatten, dropout, dense 32, dense 10.
     */
    let trained: { mlp: Model; cnn: Model; calibration: { rows: Float32Array; count: number }; held: tf.Tensor2D; heldLabels: number[] };

    beforeAll(async () => {
      const { x, labels } = digits();
      const train = 1200;
      const [mlp, cnn] = await Promise.all([loadTrainedModel('digits-static-mlp'), loadTrainedModel('digits-static-cnn')]);
      trained = { mlp, cnn, calibration: { rows: x.slice(0, train * 64), count: train }, held: tf.tensor2d(x.subarray(train * 64), [labels.length - train, 64]), heldLabels: labels.slice(train) };
    }, 60_000);

    const staticOpts = (o: Partial<ExportOnnxOptions> = {}): ExportOnnxOptions => ({ quantize: 'int8-static', calibration: trained.calibration, ...o });

    it('>= 99% top-1 agreement with tfjs on held-out digits (MLP and CNN, every convolution lowering, both calibrations)', async () => {
      const cases: [string, Model, Partial<ExportOnnxOptions>][] = [
        ['MLP', trained.mlp, {}],
        ['MLP, minmax calibration', trained.mlp, { calibrationMethod: { method: 'minmax' } }],
        ['CNN (float first conv, QGemm dense second)', trained.cnn, {}],
        ['CNN, minmax calibration', trained.cnn, { calibrationMethod: { method: 'minmax' } }],
        ['CNN, every conv dense', trained.cnn, { staticConvLowering: 'dense' }],
        ['CNN, every conv im2col', trained.cnn, { staticConvLowering: 'im2col' }],
        ['CNN, every conv QLinearConv', trained.cnn, { staticConvLowering: 'qlinearconv' }],
        ['CNN, uint8 weights', trained.cnn, { weightType: 'uint8' }],
      ];
      for (const [name, model, opts] of cases) {
        const probs = (model.predict(trained.held) as tf.Tensor).dataSync();
        const reference = argmaxRows(probs, 10);
        expect(agreement(reference, trained.heldLabels), `${name}: tfjs accuracy`).toBeGreaterThan(0.9);
        const out = await runOnnx(exportToOnnx(model, staticOpts(opts)), trained.held);
        expect(agreement(argmaxRows(out.probabilities, 10), reference), name).toBeGreaterThanOrEqual(0.99);
        // Accuracy within a point of the float model.
        expect(Math.abs(agreement(argmaxRows(out.probabilities, 10), trained.heldLabels) - agreement(reference, trained.heldLabels)), name).toBeLessThanOrEqual(0.01);
        expect(maxAbsDiff(out.probabilities, probs), `${name}: int8 must really be quantized`).toBeGreaterThan(0);
        expect(maxAbsDiff(out.probabilities, probs), name).toBeLessThan(0.5);
      }
    }, 60_000);

    it('stays uint8 between layers: one QuantizeLinear, QGemm, NhwcMaxPool, no per-row quantization', () => {
      const mlp = opCounts(exportToOnnx(trained.mlp, staticOpts()));
      expect(Object.fromEntries(mlp)).toEqual({ QuantizeLinear: 1, QGemm: 3, Softmax: 1, Identity: 1 });
      const cnn = opCounts(exportToOnnx(trained.cnn, staticOpts()));
      expect(Object.fromEntries(['Conv', 'MaxPool', 'QuantizeLinear', 'DequantizeLinear', 'QGemm', 'NhwcMaxPool', 'MatMulInteger', 'ReduceMax', 'Transpose'].map((op) => [op, cnn.get(op) ?? 0]))).toEqual({
        Conv: 1, // the 1-channel first layer stays float, as in the dynamic path
        MaxPool: 1,
        QuantizeLinear: 1,
        DequantizeLinear: 0, // the last QGemm outputs float logits
        QGemm: 3,
        NhwcMaxPool: 1,
        MatMulInteger: 0,
        ReduceMax: 0,
        Transpose: 0,
      });
      const all = opCounts(exportToOnnx(trained.cnn, staticOpts({ staticConvLowering: 'dense' })));
      expect([all.get('Conv'), all.get('QGemm'), all.get('NhwcMaxPool'), all.get('QuantizeLinear')]).toEqual([undefined, 4, 2, 1]);
      // QLinearConv runs channels last: no Transpose, and the poolings stay NhwcMaxPool on uint8.
      const qlc = onnxProto.onnx.ModelProto.decode(exportToOnnx(trained.cnn, staticOpts({ staticConvLowering: 'qlinearconv' }))).graph!.node!;
      const convs = qlc.filter((n) => n.opType === 'QLinearConv');
      expect(convs.map((n) => [n.domain, Number(n.attribute!.find((a) => a.name === 'channels_last')?.i)])).toEqual([['com.microsoft', 1], ['com.microsoft', 1]]);
      expect(qlc.filter((n) => ['Transpose', 'MaxPool', 'Conv'].includes(n.opType!))).toEqual([]);
    });

    it('a row gets bit-identical results whatever its batch, next to an outlier beyond the calibration range', async () => {
      const rows = tf.slice(trained.held, [0, 0], [8, 64]);
      const data = rows.dataSync() as Float32Array;
      const withOutlier = data.slice();
      withOutlier.fill(500, 3 * 64, 4 * 64); // row 3: every pixel far beyond anything calibrated
      const cases: [string, Model, Partial<ExportOnnxOptions>][] = [
        ['MLP', trained.mlp, {}],
        ['CNN', trained.cnn, {}],
        ['CNN, dense', trained.cnn, { staticConvLowering: 'dense' }],
        ['CNN, im2col', trained.cnn, { staticConvLowering: 'im2col' }],
        ['CNN, QLinearConv', trained.cnn, { staticConvLowering: 'qlinearconv' }],
      ];
      for (const [name, model, opts] of cases) {
        const session = await ort.InferenceSession.create(exportToOnnx(model, staticOpts(opts)));
        const run = async (x: Float32Array) => (await session.run({ input: new ort.Tensor('float32', x, [x.length / 64, 64]) })).probabilities.data as Float32Array;
        const batched = await run(withOutlier);
        const reversed = await run(Float32Array.from({ length: 8 * 64 }, (_, i) => withOutlier[(7 - Math.floor(i / 64)) * 64 + (i % 64)]));
        for (const r of [0, 1, 2, 4, 5, 6, 7]) {
          const alone = await run(data.slice(r * 64, (r + 1) * 64));
          expect(maxAbsDiff(alone, batched.slice(r * 10, (r + 1) * 10)), `${name}, row ${r}`).toBe(0);
          expect(maxAbsDiff(alone, reversed.slice((7 - r) * 10, (8 - r) * 10)), `${name}, row ${r} (reversed batch)`).toBe(0);
        }
        // The outlier saturates: finite probabilities that sum to 1.
        const outlier = batched.slice(30, 40);
        expect(outlier.every((p) => Number.isFinite(p) && p >= 0 && p <= 1), name).toBe(true);
        expect(Math.abs(outlier.reduce((a, b) => a + b, 0) - 1), name).toBeLessThan(1e-5);
        await session.release();
      }
      rows.dispose();
    }, 30_000);

    it('an input beyond the calibrated range saturates at its end (the same result however far beyond)', async () => {
      const row = tf.slice(trained.held, [5, 0], [1, 64]).dataSync() as Float32Array;
      const session = await ort.InferenceSession.create(exportToOnnx(trained.mlp, staticOpts()));
      const run = async (v: number) => {
        const x = row.slice();
        x[20] = v;
        x[43] = -v;
        return (await session.run({ input: new ort.Tensor('float32', x, [1, 64]) })).probabilities.data as Float32Array;
      };
      const [far, farther, farthest] = [await run(1e3), await run(1e6), await run(3e38)];
      expect(far.every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(far, farther)).toBe(0);
      expect(maxAbsDiff(far, farthest)).toBe(0);
      await session.release();
    });

    it('embedding output, calibration required, and the onnx-int8-static variant records its calibration', async () => {
      const float = await runOnnx(exportToOnnx(trained.mlp, { quantize: 'float32', embeddingOutput: true }), trained.held);
      const quantized = await runOnnx(exportToOnnx(trained.mlp, staticOpts({ embeddingOutput: true })), trained.held);
      // Relative to the activations' size (the top 0.01% of calibration values saturate).
      const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + Math.abs(b), 0) / v.length;
      expect(mean(Array.from(quantized.embedding, (v, i) => v - float.embedding[i]))).toBeLessThan(0.03 * mean(float.embedding));
      expect(maxAbsDiff(quantized.embedding, float.embedding)).toBeGreaterThan(0);
      expect(() => exportToOnnx(trained.mlp, { quantize: 'int8-static' })).toThrow(/calibration/);
      await expect(exportVariant(trained.mlp, 'onnx-int8-static', 'classification')).rejects.toThrow(/calibration/);
      const art = await exportVariant(trained.mlp, 'onnx-int8-static', 'classification', { calibration: { ...trained.calibration, source: 'training split' } });
      expect(art.quantization).toBe('int8');
      expect(art.quantizationDetails).toMatchObject({ mode: 'static', calibration: { method: 'percentile 99.99', rows: 1200, data: 'training split' } });
    });
  });

  it('names the class of an unsupported layer', () => {
    const model = tfl.sequential({ layers: [tfl.layers.conv1d({ inputShape: [8, 2], filters: 2, kernelSize: 2 }), tfl.layers.flatten()] });
    expect(() => exportToOnnx(model, { quantize: 'float32' })).toThrow(/Conv1D/);
  });
});
