import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { DTYPES, type Dtype, type TensorSpec } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import type { Engine, EngineOptions, EngineTensor } from './engine.js';

// ORT's native logger writes coloured lines straight to stderr, which breaks a JSON log; every
// failure it would print (an execution provider that cannot load) is caught and logged by us.
ort.env.logLevel = 'fatal';
// onnxruntime's Linux build starts Microsoft's telemetry with its first session (read then, not at
// import): a thread, an event queue in ~/.cache/Microsoft/DeveloperTools, an empty
// /tmp/mat-debug-<pid>.log per process, HTTPS uploads, 3 MB resident. Off unless the environment says.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/** ONNX Runtime engine: the fast path for fp32, fp16 and int8 models. */
export class OnnxEngine implements Engine {
  readonly runtime = 'onnx' as const;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly backend: string,
    readonly inputs: readonly TensorSpec[],
    readonly outputs: readonly TensorSpec[],
  ) {}

  /**
   * Create a session, trying the configured execution providers in order; each that fails is
   * logged with its reason and cpu is the last resort.
   */
  static async create(bytes: Uint8Array, opts: EngineOptions['onnx'], log?: Logger): Promise<OnnxEngine> {
    const wanted = [...opts.executionProviders.filter((ep) => ep !== 'cpu'), 'cpu'];
    const failures: string[] = [];
    for (const ep of wanted) {
      try {
        const session = await ort.InferenceSession.create(bytes, {
          executionProviders: [ep],
          intraOpNumThreads: opts.intraOpNumThreads,
          interOpNumThreads: opts.interOpNumThreads,
          graphOptimizationLevel: 'all',
          logSeverityLevel: 4, // fatal only: see ort.env.logLevel above
        });
        if (failures.length) log?.warn({ provider: ep, skipped: failures }, 'onnx execution provider fallback');
        return new OnnxEngine(session, ep, session.inputMetadata.map(toSpec), session.outputMetadata.map(toSpec));
      } catch (err) {
        failures.push(`${ep}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `onnx: no execution provider could load the model (${failures.join('; ')})`);
  }

  async run(feeds: Readonly<Record<string, EngineTensor>>): Promise<Record<string, EngineTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.dims);
    const results = await this.session.run(ortFeeds);
    const out: Record<string, EngineTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      out[name] = { dtype: t.type as Dtype, data: t.data as EngineTensor['data'], dims: t.dims };
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function toSpec(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `onnx: '${meta.name}' is not a tensor; only tensor inputs and outputs are served`);
  const dtype = meta.type as Dtype;
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `onnx: '${meta.name}' has dtype ${meta.type}; served dtypes are ${DTYPES.join(', ')}`);
  }
  // Symbolic dimensions (strings) are dynamic: -1.
  return { name: meta.name, dtype, shape: meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)) };
}
