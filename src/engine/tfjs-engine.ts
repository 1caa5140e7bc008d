import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import type { Logger } from 'pino';
import type { Dtype, TensorSpec } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import type { Engine, EngineOptions, EngineTensor } from './engine.js';
import { selectTfjsBackend } from './tfjs-backend.js';
import { tf, tfl } from './tfjs-modules.js';

/** TensorFlow.js LayersModel engine: the trainable path. */
export class TfjsEngine implements Engine {
  readonly runtime = 'tfjs' as const;

  private constructor(
    private readonly model: TfLayers.LayersModel,
    readonly backend: string,
    readonly inputs: readonly TensorSpec[],
    readonly outputs: readonly TensorSpec[],
  ) {}

  /**
   * Load a LayersModel; weight-quantized (uint8/float16) weights are dequantized by tfjs while
   * loading. `specs` names inputs/outputs positionally (bundles name them; tfjs names layers).
   */
  static async create(
    artifacts: TfCore.io.ModelArtifacts,
    opts: EngineOptions['tfjs'],
    specs?: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
    log?: Logger,
  ): Promise<TfjsEngine> {
    const { backend } = await selectTfjsBackend(opts.backends, log);
    let model: TfLayers.LayersModel;
    try {
      model = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
    } catch (err) {
      throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `tfjs: cannot load the model (${(err as Error).message})`);
    }
    const inputs = model.inputs.map((t, i) => ({
      name: specs?.inputs[i]?.name ?? model.inputNames[i],
      dtype: (t.dtype as Dtype) ?? 'float32',
      shape: t.shape.map((d) => (d == null ? -1 : d)),
    }));
    const outputs = model.outputs.map((t, i) => ({
      name: specs?.outputs[i]?.name ?? model.outputNames[i],
      dtype: 'float32' as Dtype,
      shape: t.shape.map((d) => (d == null ? -1 : d)),
    }));
    return new TfjsEngine(model, backend, inputs, outputs);
  }

  async run(feeds: Readonly<Record<string, EngineTensor>>): Promise<Record<string, EngineTensor>> {
    const xs = this.inputs.map((spec) => {
      const t = feeds[spec.name];
      if (!t) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${spec.name}' is required`);
      return tf.tensor(t.data as Float32Array | Int32Array, [...t.dims], t.dtype === 'int32' ? 'int32' : 'float32');
    });
    const ys = this.model.predict(xs.length === 1 ? xs[0] : xs) as TfCore.Tensor | TfCore.Tensor[];
    const list = Array.isArray(ys) ? ys : [ys];
    try {
      const out: Record<string, EngineTensor> = {};
      for (let i = 0; i < list.length; i++) {
        out[this.outputs[i].name] = { dtype: 'float32', data: (await list[i].data()) as Float32Array, dims: list[i].shape };
      }
      return out;
    } finally {
      tf.dispose(xs);
      tf.dispose(list);
    }
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}
