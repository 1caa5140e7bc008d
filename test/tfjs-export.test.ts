import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { tfjsArtifacts } from '../src/engine/index.js';
import { saveTfjsArtifacts, toFloat16Bytes, quantizeUint8, type TfjsQuantization } from '../src/training/tfjs-export.js';

const CLASSES = 5;
const DIMS = 20;

/** Gaussian clusters; noise 2 puts a fair share of rows near decision boundaries. */
function clusters(rows: number, noise: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  return tf.tidy(() => {
    const centers = tf.randomNormal([CLASSES, DIMS], 0, 1, 'float32', 21);
    const labels = Array.from({ length: rows }, (_, i) => i % CLASSES);
    const x = tf.add(tf.gather(centers, labels), tf.randomNormal([rows, DIMS], 0, noise, 'float32', seed)) as tf.Tensor2D;
    return { x, y: tf.cast(tf.oneHot(labels, CLASSES), 'float32') as tf.Tensor2D };
  });
}

function argmaxRows(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length / CLASSES; r++) {
    let best = 0;
    for (let c = 1; c < CLASSES; c++) if (values[r * CLASSES + c] > values[r * CLASSES + best]) best = c;
    out.push(best);
  }
  return out;
}

async function roundTrip(model: tfl.LayersModel, quantize: TfjsQuantization): Promise<{ files: Map<string, Uint8Array>; loaded: tfl.LayersModel }> {
  const files = await saveTfjsArtifacts(model, { quantize });
  const { modelTopology, weightSpecs, weightData } = tfjsArtifacts(files, 'model.json');
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs, weightData }));
  return { files, loaded };
}

describe('saveTfjsArtifacts', () => {
  let model: tfl.LayersModel;
  let x: tf.Tensor2D;
  let expected: Float32Array;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
    model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [DIMS], units: 32, activation: 'relu', kernelInitializer: init(1) }),
        tfl.layers.batchNormalization({}),
        tfl.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(2) }),
        tfl.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: init(3) }),
      ],
    });
    const train = clusters(400, 1, 22);
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    await model.fit(train.x, train.y, { epochs: 10, batchSize: 32, shuffle: false, verbose: 0 });
    tf.dispose([train.x, train.y]);
    x = clusters(300, 2, 23).x;
    expected = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });

  it('writes a standard layers-model model.json and weights.bin', async () => {
    const { files, loaded } = await roundTrip(model, 'float32');
    expect([...files.keys()].sort()).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(new TextDecoder().decode(files.get('model.json')));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    const params = model.countParams();
    expect(files.get('weights.bin')!.byteLength).toBe(params * 4);
    const got = (loaded.predict(x) as tf.Tensor).dataSync();
    expect(Array.from(got)).toEqual(Array.from(expected));
  });

  it('float16 weights predict within 1e-2 of float32', async () => {
    const { files, loaded } = await roundTrip(model, 'float16');
    const json = JSON.parse(new TextDecoder().decode(files.get('model.json')));
    expect(json.weightsManifest[0].weights.every((w: tf.io.WeightsManifestEntry) => w.quantization?.dtype === 'float16')).toBe(true);
    const got = (loaded.predict(x) as tf.Tensor).dataSync();
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected[i]));
    expect(maxDiff).toBeLessThan(1e-2);
    expect(maxDiff, 'weights must really be float16').toBeGreaterThan(0);
  });

  it('uint8 weights keep top-1 agreement >= 0.95 at a quarter of the size', async () => {
    const { files, loaded } = await roundTrip(model, 'uint8');
    const params = model.countParams();
    expect(files.get('weights.bin')!.byteLength).toBe(params);
    const got = argmaxRows((loaded.predict(x) as tf.Tensor).dataSync());
    const ref = argmaxRows(expected);
    expect(got.filter((c, i) => c === ref[i]).length / ref.length).toBeGreaterThanOrEqual(0.95);
  });

  it('encodes float16 and uint8 values exactly where they are representable', () => {
    const halves = new Uint16Array(toFloat16Bytes(new Float32Array([0, 1, -2, 65504, 1e6, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11])).buffer);
    expect(Array.from(halves)).toEqual([0x0000, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0x0001, 0x3c00, 0x3c02]);
    const q = quantizeUint8(new Float32Array([-1, 0, 0.5, 3]));
    expect(q.data[1] * q.scale + q.min).toBe(0);
    expect(Math.abs(q.data[3] * q.scale + q.min - 3)).toBeLessThan(q.scale);
  });
});
