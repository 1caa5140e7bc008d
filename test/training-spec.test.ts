import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { buildModel, compileModel, inferShapes, parseModelSpec, TARGET_SCALE_LAYER } from '../src/training/spec/index.js';
import { installFastCpuConvGradient, kernelsOfTrainingStep, selectTrainingBackend, uninstallFastCpuConvGradient } from '../src/training/trainer/index.js';

const cnn = {
  inputShape: [8, 8, 1],
  layers: [{ type: 'conv2d', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }, { type: 'maxPooling2d' }, { type: 'flatten' }],
};

describe('model specs', () => {
  it('fills defaults: adam, the task, 50 epochs, seed 42', () => {
    const s = parseModelSpec({ layers: [{ type: 'dense', units: 8 }] }, 's.json');
    expect(s).toMatchObject({ task: 'classification', optimizer: { type: 'adam' }, training: { epochs: 50, batchSize: 32 }, seed: 42 });
  });

  it('names an unknown layer type and where it is', () => {
    expect(() => parseModelSpec({ layers: [{ type: 'dense', units: 4 }, { type: 'lstm', units: 4 }] }, 's.json')).toThrow(
      /^s\.json: 'layers\.1' has unknown layer type 'lstm'; supported: dense, dropout, conv2d/,
    );
  });

  it('rejects misspelled fields and bad values, naming the field', () => {
    expect(() => parseModelSpec({ layers: [{ type: 'dense', unit: 4 }] }, 's.json')).toThrow(/'layers\.0/);
    expect(() => parseModelSpec({ layers: [{ type: 'dropout', rate: 1.5 }] }, 's.json')).toThrow(/'layers\.0\.rate'/);
    expect(() => parseModelSpec({ optimizer: { type: 'adagrad' } }, 's.json')).toThrow(/'optimizer\.type'/);
    expect(() => parseModelSpec({ task: 'regression', loss: 'categoricalCrossentropy' }, 's.json')).toThrow(/does not fit a regression model/);
  });

  it('refuses impossible shapes before building anything', () => {
    const shapes = (spec: unknown, features: number) => inferShapes(parseModelSpec(spec, 's.json'), features, 's.json');
    expect(shapes(cnn, 64)).toEqual([[8, 8, 4], [4, 4, 4], [64]]);
    expect(() => shapes({ ...cnn, inputShape: [8, 8, 2] }, 64)).toThrow(/'inputShape' \[8, 8, 2\] holds 128 values per row but the data has 64 features/);
    expect(() => shapes({ inputShape: [2, 2, 1], layers: [{ type: 'conv2d', filters: 2, kernelSize: 5 }, { type: 'flatten' }] }, 4)).toThrow(
      /'layers\.0' \(conv2d\): impossible shape: a 5x5 kernel does not fit the 2x2x1 input with 'valid' padding/,
    );
    expect(() => shapes({ inputShape: [8, 8, 1], layers: [{ type: 'dense', units: 3 }] }, 64)).toThrow(/needs a flat input but gets 8x8x1; add a flatten layer/);
    expect(() => shapes({ layers: [{ type: 'conv2d', filters: 2, kernelSize: 3 }] }, 64)).toThrow(/needs an image input/);
    expect(() => shapes({ layers: [{ type: 'reshape', targetShape: [8, 9] }] }, 64)).toThrow(/\[8, 9\] holds 72 values but its input 64 has 64/);
    expect(() => shapes({ inputShape: [8, 8, 1], layers: [] }, 64)).toThrow(/the output layer needs a flat input/);
  });

  it('builds a regression model that answers in target units through a frozen last layer', () => {
    const spec = parseModelSpec({ task: 'regression', layers: [{ type: 'dense', units: 4, activation: 'relu' }] }, 's.json');
    const built = buildModel(spec, { features: 3, outputUnits: 1, targetScale: { mean: 150, std: 70 } });
    const scale = built.model.getLayer(TARGET_SCALE_LAYER);
    expect(scale.trainable).toBe(false);
    expect(Array.from(scale.getWeights()[0].dataSync())).toEqual([70]);
    expect(Array.from(scale.getWeights()[1].dataSync())).toEqual([150]);
    expect(built.trainable.outputs[0].shape).toEqual([null, 1]);
    expect(built.trainable.layers.map((l) => l.name)).not.toContain(TARGET_SCALE_LAYER);
  });
});

describe('training backend selection', () => {
  async function kernels(spec: unknown): Promise<string[]> {
    const s = parseModelSpec(spec, 's.json');
    return kernelsOfTrainingStep(async () => {
      const b = buildModel(s, { features: 64, outputUnits: 3 });
      compileModel(b, s);
      const x = tf.zeros([2, ...(s.inputShape ?? [64])]);
      const y = tf.zeros([2, 3]);
      await b.trainable.trainOnBatch(x, y);
      tf.dispose([x, y]);
      b.model.dispose();
    });
  }

  it('trains a CNN on cpu, because wasm has no convolution filter gradient (tfjs-node is absent here)', async () => {
    const k = await kernels(cnn);
    expect(k).toContain('Conv2DBackpropFilter');
    const choice = await selectTrainingBackend(k);
    expect(choice.backend).toBe('cpu');
    expect(choice.skipped.find((s) => s.startsWith('wasm'))).toMatch(/wasm: no .*Conv2DBackpropFilter/);
    expect(choice.skipped.find((s) => s.startsWith('tensorflow'))).toMatch(/@tensorflow\/tfjs-node is not installed/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('trains a dense model on wasm, whose kernels cover it', async () => {
    const choice = await selectTrainingBackend(await kernels({ layers: [{ type: 'dense', units: 8, activation: 'relu' }, { type: 'dropout', rate: 0.2 }] }));
    expect(choice.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    await tf.setBackend('cpu');
  });

  it('refuses a backend that cannot train the model when it is asked for explicitly', async () => {
    await expect(selectTrainingBackend(await kernels(cnn), 'wasm')).rejects.toMatchObject({ code: 'EDGELOOP_ENGINE_UNAVAILABLE', message: expect.stringMatching(/no backend can train this model \(wasm: no Conv2DBackpropFilter/) });
    await tf.setBackend('cpu');
  });

  it('computes the same filter gradient with the fast cpu kernel as with the stock one', async () => {
    await tf.setBackend('cpu');
    const cases: { x: [number, number, number, number]; k: number; cout: number; stride: number; pad: 'same' | 'valid' }[] = [
      { x: [3, 8, 8, 1], k: 3, cout: 4, stride: 1, pad: 'same' },
      { x: [2, 7, 6, 3], k: 2, cout: 5, stride: 2, pad: 'same' },
      { x: [2, 9, 9, 2], k: 3, cout: 3, stride: 2, pad: 'valid' },
    ];
    for (const c of cases) {
      const x = tf.randomNormal(c.x, 0, 1, 'float32', 1) as tf.Tensor4D;
      const filterShape: [number, number, number, number] = [c.k, c.k, c.x[3], c.cout];
      const y = tf.conv2d(x, tf.zeros(filterShape) as tf.Tensor4D, c.stride, c.pad);
      const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 2) as tf.Tensor4D;
      const run = () => (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape }) as tf.Tensor).dataSync();
      uninstallFastCpuConvGradient();
      const stockKernel = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
      const stock = run();
      installFastCpuConvGradient();
      expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).not.toBe(stockKernel);
      const fast = run();
      let maxDiff = 0;
      for (let i = 0; i < stock.length; i++) maxDiff = Math.max(maxDiff, Math.abs(stock[i] - fast[i]));
      expect(maxDiff, JSON.stringify(c)).toBeLessThan(1e-5);
      expect(Math.max(...Array.from(stock, Math.abs))).toBeGreaterThan(0.1);
    }
  });
});
