import { createRequire } from 'node:module';
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

/** onnxruntime-node's native session (`dist/binding.js`; the package has no `exports` map, and is pinned to 1.30). */
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: ort.InferenceSession.SessionOptions): void;
  readonly inputMetadata: NativeMetadata[];
  readonly outputMetadata: NativeMetadata[];
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: ort.InferenceSession.RunOptions): Record<string, ort.Tensor>;
  dispose(): void;
}
interface NativeMetadata {
  name: string;
  isTensor: boolean;
  shape: number[];
  type: number;
}
const { binding, initOrt } = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as { binding: { InferenceSession: new () => NativeSession }; initOrt(): void };

/** ONNX element types (TensorProto.DataType) by number, as onnxruntime-node's backend names them. */
const ONNX_TYPES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 21: 'uint4', 22: 'int4' };
const RUN_OPTIONS: ort.InferenceSession.RunOptions = {};

/**
 * ONNX Runtime engine: the fast path for fp32, fp16 and int8 models.
 *
 * It drives onnxruntime-node's native session, as the package's own InferenceSession does,
 * without the two things that one adds to every run(): a second check of the feeds, and a
 * setImmediate before the (synchronous) native call. The turn of the event loop that defers
 * cost the digits MLP ~5 of its ~22 µs per call and added a hop to every answer; the batcher
 * already runs each batch at a turn of its own.
 */
export class OnnxEngine implements Engine {
  readonly runtime = 'onnx' as const;
  private readonly fetches: Record<string, null>;
  private readonly firstFetch: Record<string, null>;

  private constructor(
    private readonly session: NativeSession,
    readonly backend: string,
    readonly inputs: readonly TensorSpec[],
    readonly outputs: readonly TensorSpec[],
  ) {
    this.fetches = Object.fromEntries(outputs.map((o) => [o.name, null]));
    this.firstFetch = outputs.length ? { [outputs[0].name]: null } : this.fetches;
  }

  /**
   * Create a session, trying the configured execution providers in order; each that fails is
   * logged with its reason and cpu is the last resort.
   */
  static async create(bytes: Uint8Array, opts: EngineOptions['onnx'], log?: Logger): Promise<OnnxEngine> {
    const wanted = [...opts.executionProviders.filter((ep) => ep !== 'cpu'), 'cpu'];
    const failures: string[] = [];
    initOrt();
    for (const ep of wanted) {
      const session = new binding.InferenceSession();
      try {
        session.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
          executionProviders: [ep],
          intraOpNumThreads: opts.intraOpNumThreads,
          interOpNumThreads: opts.interOpNumThreads,
          graphOptimizationLevel: 'all',
          logSeverityLevel: 4, // fatal only: see ort.env.logLevel above
        });
      } catch (err) {
        failures.push(`${ep}: ${(err as Error).message.split('\n')[0]}`);
        try {
          session.dispose();
        } catch {
          // Nothing loaded: nothing to free.
        }
        continue;
      }
      try {
        const engine = new OnnxEngine(session, ep, session.inputMetadata.map(toSpec), session.outputMetadata.map(toSpec));
        if (failures.length) log?.warn({ provider: ep, skipped: failures }, 'onnx execution provider fallback');
        return engine;
      } catch (err) {
        session.dispose();
        throw err;
      }
    }
    throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `onnx: no execution provider could load the model (${failures.join('; ')})`);
  }

  async run(feeds: Readonly<Record<string, EngineTensor>>, opts?: { firstOnly?: boolean }): Promise<Record<string, EngineTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const spec of this.inputs) {
      const t = feeds[spec.name];
      // The native session would say "Missing Input" from inside a kernel: name it here.
      if (!t) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${spec.name}' is required`);
      ortFeeds[spec.name] = new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.dims);
    }
    // Only the outputs asked for are computed and copied out: an int8 embedding output costs a DequantizeLinear.
    const results = this.session.run(ortFeeds, opts?.firstOnly ? this.firstFetch : this.fetches, RUN_OPTIONS);
    const out: Record<string, EngineTensor> = {};
    for (const name in results) {
      const t = results[name];
      out[name] = { dtype: t.type as Dtype, data: t.data as EngineTensor['data'], dims: t.dims };
    }
    return out;
  }

  async dispose(): Promise<void> {
    this.session.dispose();
  }
}

function toSpec(meta: NativeMetadata): TensorSpec {
  if (!meta.isTensor) throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `onnx: '${meta.name}' is not a tensor; only tensor inputs and outputs are served`);
  const dtype = ONNX_TYPES[meta.type] as Dtype | undefined;
  if (!dtype || !(DTYPES as readonly string[]).includes(dtype)) {
    throw new EdgeloopError('EDGELOOP_MODEL_LOAD_FAILED', `onnx: '${meta.name}' has dtype ${dtype ?? `#${meta.type}`}; served dtypes are ${DTYPES.join(', ')}`);
  }
  // Symbolic dimensions are -1 in the native metadata: dynamic.
  return { name: meta.name, dtype, shape: meta.shape.map((d) => (d > 0 ? d : -1)) };
}
