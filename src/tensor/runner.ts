import type { TensorSpec } from '../bundle/index.js';
import { busyError, type EngineTensor, type ServedModel, type TypedArray } from '../engine/index.js';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import type { RequestTaps } from '../transport/index.js';
import type { InferRequest, OutputTensor } from './request.js';

/** One lane per engine: tensor requests a model cannot batch run one per engine call, in arrival order, bounded. */
interface Lane {
  tail: Promise<unknown>;
  waiting: number;
}

const lanes = new WeakMap<object, Lane>();

export interface RunLimits {
  queueLimit: number;
}


export interface TensorResult {
  outputs: OutputTensor[];
  /** One per row, when the model keeps its predictions for feedback (bundles with one float32 input). */
  predictionIds?: string[];
}

/**
 * Run an OIP request on a served model and return the outputs asked for, raw. Inputs are
 * checked against the model's declared signature (names, datatypes, rank, fixed dimensions);
 * a bundle's standardisation applies to its first input, as for row requests, so a bundle
 * answers the same over rows and tensors. A model whose inputs and outputs follow rows
 * (`ServedModel.batchable`) runs the request on its micro-batcher, sharing engine calls with
 * row requests, and its rows reach the drift monitor and the prediction ring as row requests'
 * do; any other model runs tensor requests one per engine call (a fixed batch dimension cannot
 * be merged), queued behind each other with the row batcher's limit.
 */
export async function runTensors(model: ServedModel, req: InferRequest, deadline: number, limits: RunLimits, taps: RequestTaps = {}): Promise<TensorResult> {
  const specs = model.engine.inputs;
  const byName = new Map(req.inputs.map((t) => [t.name, t]));
  for (const t of req.inputs) {
    if (!specs.some((s) => s.name === t.name)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${t.name}' is not an input of ${model.name} (inputs: ${specs.map((s) => s.name).join(', ') || 'none'})`);
  }
  const feeds: Record<string, EngineTensor> = {};
  let symbolic = false;
  for (const spec of specs) {
    const t = byName.get(spec.name);
    if (!t) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `input '${spec.name}' is missing (inputs: ${specs.map((s) => s.name).join(', ')})`);
    if (t.dtype !== spec.dtype) throw new EdgeloopError('EDGELOOP_BAD_DTYPE', `input '${spec.name}' is ${spec.dtype}; got ${t.dtype}`);
    checkShape(spec, t.shape);
    symbolic ||= spec.shape.some((d) => d < 0);
    feeds[spec.name] = { dtype: t.dtype, data: t.data as TypedArray, dims: t.shape };
  }
  const wanted = req.outputs ?? model.engine.outputs.map((o) => o.name);
  for (const name of wanted) {
    if (!model.engine.outputs.some((o) => o.name === name)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${name}' is not an output of ${model.name} (outputs: ${model.engine.outputs.map((o) => o.name).join(', ')})`);
  }
  const raw = specs.length > 0 ? feeds[specs[0].name].data : undefined;
  standardize(model, feeds);
  const rows = commonRows(specs, feeds);
  if (model.batchable && rows !== undefined && rows > 0) return runAsRows(model, feeds, rows, raw!, wanted, deadline, taps);
  const results = await inLane(model.engine, limits, deadline, async () => {
    try {
      const started = performance.now();
      const out = await model.engine.run(feeds);
      const first = specs[0]?.name;
      model.onEngineCall?.(performance.now() - started, first !== undefined ? (feeds[first]?.dims[0] ?? 1) : 1);
      return out;
    } catch (err) {
      // Declared shapes were checked; what ONNX Runtime still refuses with symbolic dimensions
      // is the client's combination of sizes (e.g. a MatMul's inner dimensions), not a fault.
      const e = asEdgeloopError(err);
      if (e.code === 'EDGELOOP_INTERNAL' && symbolic) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `the model refused these input sizes: ${e.message.split('\n')[0]}`);
      throw e;
    }
  });
  return {
    outputs: wanted.map((name) => {
      const t = results[name];
      return { name, dtype: t.dtype, shape: t.dims, data: t.data };
    }),
  };
}

/** Every input's first dimension, when they agree (a request of rows); undefined otherwise. */
function commonRows(specs: readonly TensorSpec[], feeds: Record<string, EngineTensor>): number | undefined {
  let rows: number | undefined;
  for (const spec of specs) {
    const n = feeds[spec.name].dims[0];
    if (n === undefined || (rows !== undefined && n !== rows)) return undefined;
    rows = n;
  }
  return rows;
}

/** A batchable model: the request's rows on the micro-batcher, with the row path's taps. */
async function runAsRows(model: ServedModel, feeds: Record<string, EngineTensor>, rows: number, raw: TypedArray, wanted: string[], deadline: number, taps: RequestTaps): Promise<TensorResult> {
  const data: Record<string, TypedArray> = {};
  for (const [name, t] of Object.entries(feeds)) data[name] = t.data;
  // Refused before the prediction ring keeps a copy of rows that will not be served (as for row requests).
  if (model.busy) throw busyError(model);
  // The ring keeps the rows as the client sent them (before standardisation), as for row requests.
  const token = taps.predictions?.before(model, { ...data, [model.inputs[0].name]: raw }, rows);
  const result = await model.submitRows(data, rows, deadline);
  const outputs = wanted.map((name) => {
    const o = result.outputs[name];
    return { name, dtype: model.engine.outputs.find((s) => s.name === name)!.dtype, shape: [rows, ...o.tail], data: o.data };
  });
  let predictionIds: string[] | undefined;
  // Predictions are read out only for what uses them: the ring, or a drift monitor (bundles with a reference profile).
  if (token !== undefined || (taps.onServed && model.manifest.reference != null)) {
    const first = result.outputs[model.engine.outputs[0].name];
    const predictions = model.interpret(first.data, first.width, rows);
    taps.onServed?.(model, data, rows, predictions);
    if (token !== undefined) {
      taps.predictions!.after(model, token, predictions);
      predictionIds = predictions.map((p) => (p as { predictionId?: string }).predictionId!);
    }
  }
  return { outputs, predictionIds };
}

function checkShape(spec: TensorSpec, shape: readonly number[]): void {
  const declared = spec.shape;
  const ok = declared.length === shape.length && declared.every((d, i) => d < 0 || d === shape[i]);
  if (!ok) {
    const want = declared.map((d) => (d < 0 ? '-1' : String(d))).join(',');
    throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `input '${spec.name}' must have shape [${want}] (-1: any size); got [${shape.join(',')}]`);
  }
}

/** A bundle's (x - mean) / std on its first input, on a copy (the request's data stays as sent). */
function standardize(model: ServedModel, feeds: Record<string, EngineTensor>): void {
  const std = model.manifest.preprocessing.standardize;
  const first = model.engine.inputs[0];
  if (!std || !first || first.dtype !== 'float32' || !feeds[first.name]) return;
  const t = feeds[first.name];
  const n = std.mean.length;
  const x = Float32Array.from(t.data as Float32Array);
  if (x.length % n !== 0) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `input '${first.name}' must have ${n} values per row (standardised features)`);
  for (let i = 0; i < x.length; i++) {
    const j = i % n;
    const s = std.std[j];
    x[i] = (x[i] - std.mean[j]) / (s > 0 ? s : 1);
  }
  feeds[first.name] = { ...t, data: x };
}

async function inLane<T>(engine: object, limits: RunLimits, deadline: number, work: () => Promise<T>): Promise<T> {
  let lane = lanes.get(engine);
  if (!lane) lanes.set(engine, (lane = { tail: Promise.resolve(), waiting: 0 }));
  if (lane.waiting >= limits.queueLimit) throw new EdgeloopError('EDGELOOP_BUSY', `model queue is full (${limits.queueLimit} tensor requests waiting)`);
  lane.waiting++;
  const l = lane;
  const run = l.tail.then(async () => {
    l.waiting--;
    if (Date.now() >= deadline) throw new EdgeloopError('EDGELOOP_TIMEOUT', 'request expired in the queue before it could run');
    return work();
  });
  l.tail = run.catch(() => undefined);
  return run;
}
