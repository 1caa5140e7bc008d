import { rowSize, type Manifest } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import type { Engine, TypedArray } from './engine.js';
import { MicroBatcher, type BatcherOptions, type BatcherStats, type RowsResult } from './micro-batcher.js';

/** One entry of a reply's `predictions`, per input row. */
export type Prediction =
  | { label: string; index: number; confidence: number; probabilities: number[] }
  | { value: number }
  | { values: number[] }
  | { embedding: number[] };

/** The most recent durations (ms) in a ring buffer, with percentiles. */
export class LatencyRing {
  private readonly values = new Float64Array(2048);
  private count = 0;

  record(ms: number): void {
    this.values[this.count++ % this.values.length] = ms;
  }

  /** Percentile (0-100) over the recent values, or null with none. */
  percentile(p: number): number | null {
    const n = Math.min(this.count, this.values.length);
    if (n === 0) return null;
    const sorted = this.values.slice(0, n).sort();
    return sorted[Math.min(n - 1, Math.floor((p / 100) * n))];
  }
}

/** How a served version is doing: what trials judge and `edgeloop status` shows. */
export class HealthStats {
  ok = 0;
  failed = 0;
  /** End-to-end request latency inside the daemon (queue + engine + post-processing). */
  readonly latency = new LatencyRing();
  /** Engine call durations: the model's own speed, much less sensitive to load than latency. */
  readonly engine = new LatencyRing();

  record(ok: boolean, latencyMs: number): void {
    if (ok) this.ok++;
    else this.failed++;
    this.latency.record(latencyMs);
  }
}

export interface PredictResult {
  predictions: Prediction[];
  batchRows: number;
}

/**
 * A model as the daemon serves it: manifest, engine and queue, plus the pre-processing the
 * bundle asks for (standardisation) and the post-processing of its task.
 */
export class ServedModel {
  readonly name: string;
  readonly version: string;
  readonly inputs: { name: string; dtype: Engine['inputs'][number]['dtype']; rowSize: number }[];
  readonly health = new HealthStats();
  /** Told after every engine call with its duration and rows (metrics); synchronous, so it adds no await to a batch. */
  onEngineCall?: (ms: number, rows: number) => void;
  /**
   * Every input and output follows rows (a dynamic first dimension, the rest fixed), so tensor
   * requests may share engine calls with row requests. Set by the loader, which checks it on
   * the engine itself (src/daemon/load-models.ts); false until then.
   */
  batchable = false;
  private readonly batcher: MicroBatcher;
  private readonly mean?: Float32Array;
  private readonly invStd?: Float32Array;

  constructor(
    readonly manifest: Manifest,
    readonly engine: Engine,
    batcherOpts: BatcherOptions,
  ) {
    this.name = manifest.name;
    this.version = manifest.version;
    this.inputs = engine.inputs.map((s) => ({ name: s.name, dtype: s.dtype, rowSize: rowSize(s) }));
    const std = manifest.preprocessing.standardize;
    if (std) {
      const first = this.inputs[0];
      if (!first || std.mean.length !== first.rowSize) {
        throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${this.name}: 'preprocessing.standardize' has ${std.mean.length} values, input '${first?.name}' has ${first?.rowSize ?? 0} per row`);
      }
      this.mean = Float32Array.from(std.mean);
      this.invStd = Float32Array.from(std.std, (s) => (s > 0 ? 1 / s : 1));
    }
    this.batcher = new MicroBatcher(engine, {
      ...batcherOpts,
      onBatch: (ms, rows) => {
        this.health.engine.record(ms);
        this.onEngineCall?.(ms, rows);
      },
    });
  }

  get stats(): BatcherStats {
    return this.batcher.stats;
  }

  /** The model queue is full (serving.queueLimit): a request now would get EDGELOOP_BUSY. */
  get busy(): boolean {
    return this.batcher.full;
  }

  /** Run `rows` decoded rows (fresh arrays: standardised in place) and post-process them. */
  async predict(feeds: Record<string, TypedArray>, rows: number, deadline: number): Promise<PredictResult> {
    if (this.mean && this.invStd) {
      const x = feeds[this.inputs[0].name] as Float32Array;
      const { mean, invStd } = this;
      const n = mean.length;
      for (let r = 0; r < x.length; r += n) for (let j = 0; j < n; j++) x[r + j] = (x[r + j] - mean[j]) * invStd[j];
    }
    const result = await this.batcher.submit(feeds, rows, deadline, true);
    const first = result.outputs[this.engine.outputs[0].name];
    return { predictions: this.interpret(first.data, first.width, rows), batchRows: result.batchRows };
  }

  /** Queue prepared feeds (already standardised) on the micro-batcher: every output's rows, raw. */
  submitRows(feeds: Readonly<Record<string, TypedArray>>, rows: number, deadline: number): Promise<RowsResult> {
    return this.batcher.submit(feeds, rows, deadline);
  }

  /** Stop intake and wait for what is queued or running. */
  drain(): Promise<void> {
    return this.batcher.drain();
  }

  abort(err: EdgeloopError): void {
    this.batcher.abort(err);
  }

  async dispose(): Promise<void> {
    await this.engine.dispose();
  }

  /** The task's reading of the first output's rows (`width` values each): labels, values or embeddings. */
  interpret(data: TypedArray, width: number, rows: number): Prediction[] {
    const out: Prediction[] = new Array(rows);
    const task = this.manifest.task;
    const values = data as Float32Array;
    for (let r = 0; r < rows; r++) {
      const at = r * width;
      if (task === 'classification') out[r] = this.classify(values, at, width);
      else if (task === 'embedding') out[r] = { embedding: roundedRow(values, at, width) };
      else out[r] = width === 1 ? { value: round(values[at]) } : { values: roundedRow(values, at, width) };
    }
    return out;
  }

  /** One row of scores at data[at…at+width): read in place, one array allocated (the probabilities). */
  private classify(data: Float32Array, at: number, width: number): Prediction {
    const kind = this.manifest.outputKind;
    const probs: number[] = new Array(width);
    if (kind === 'logits' || (kind === 'auto' && !isDistribution(data, at, width))) softmax(data, at, width, probs);
    else for (let i = 0; i < width; i++) probs[i] = data[at + i];
    let index = 0;
    for (let i = 1; i < width; i++) if (probs[i] > probs[index]) index = i;
    const confidence = round(probs[index]);
    for (let i = 0; i < width; i++) probs[i] = round(probs[i]);
    return { label: this.manifest.labels?.[index] ?? String(index), index, confidence, probabilities: probs };
  }
}

/** EDGELOOP_BUSY for a model whose queue is full, refused before its rows are kept or decoded further. */
export function busyError(model: { name: string }): EdgeloopError {
  return new EdgeloopError('EDGELOOP_BUSY', `model '${model.name}' queue is full: retry after a short back-off`);
}

/** Six decimals: shorter replies, far below model precision. */
function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

function roundedRow(data: Float32Array, at: number, width: number): number[] {
  const out: number[] = new Array(width);
  for (let i = 0; i < width; i++) out[i] = round(data[at + i]);
  return out;
}

function isDistribution(data: Float32Array, at: number, width: number): boolean {
  let sum = 0;
  for (let i = 0; i < width; i++) {
    const v = data[at + i];
    if (v < 0 || v > 1) return false;
    sum += v;
  }
  return Math.abs(sum - 1) < 1e-3;
}

/** Softmax of data[at…at+width) into out, in the order of operations of max, map, reduce and map (same values as before). */
function softmax(data: Float32Array, at: number, width: number, out: number[]): void {
  let max = -Infinity;
  for (let i = 0; i < width; i++) {
    const v = data[at + i];
    if (v > max) max = v;
    else if (v !== v) {
      max = NaN; // as Math.max: one NaN makes every probability NaN
      break;
    }
  }
  let sum = 0;
  for (let i = 0; i < width; i++) {
    out[i] = Math.exp(data[at + i] - max);
    sum += out[i];
  }
  for (let i = 0; i < width; i++) out[i] /= sum;
}
