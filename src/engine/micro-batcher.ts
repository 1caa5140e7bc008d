import { rowSize, type TensorSpec } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { TYPED_ARRAYS, type Engine, type EngineTensor, type TypedArray } from './engine.js';

export interface BatcherOptions {
  /** Most rows in one engine call. */
  maxBatch: number;
  /** In 'fixed' mode, how long the first request of a batch waits for others. */
  maxDelayMs: number;
  /**
   * 'adaptive' (default): an idle engine runs what has arrived at the next turn of the event
   * loop, and requests arriving while it runs form the next batch, so batches grow with load
   * and an idle device answers at once. 'fixed': always wait maxDelayMs for company (for
   * accelerators where a bigger batch is worth the latency).
   */
  batchWindow?: 'adaptive' | 'fixed';
  /** Requests waiting at most; beyond that submit() fails at once with EDGELOOP_BUSY. */
  queueLimit: number;
  /** Clock, injectable for tests. */
  now?: () => number;
  /** Told the duration (ms) of every engine call. */
  onBatch?: (ms: number, rows: number) => void;
}

/** One request's share of a batch result: per output, its rows (a view, not a copy). */
export interface RowsResult {
  /** `width` values per row; `tail` the output's dimensions after the batch one (shared, do not change). */
  outputs: Record<string, { data: TypedArray; width: number; tail: readonly number[] }>;
  /** Rows in the engine call this request rode in. */
  batchRows: number;
}

interface Pending {
  rows: number;
  /** Only the engine's first output is read (a classifier or regression reply). */
  firstOnly: boolean;
  feeds: Readonly<Record<string, TypedArray>>;
  deadline: number;
  settled: boolean;
  resolve(result: RowsResult): void;
  reject(err: EdgeloopError): void;
}

export interface BatcherStats {
  batches: number;
  rows: number;
  requests: number;
  busy: number;
  timeouts: number;
  queued: number;
}

/**
 * A bounded queue per model that turns requests arriving within `maxDelayMs` (or until
 * `maxBatch` rows) into one engine call. One call runs at a time; requests that arrive while
 * it runs form the next batch, so batches grow with load and latency stays flat when idle.
 */
export class MicroBatcher {
  private queue: Pending[] = [];
  private head = 0;
  private queuedRows = 0;
  private running: Pending[] | undefined;
  /** A flush scheduled for later (a timer in 'fixed' mode, setImmediate in 'adaptive'). */
  private scheduled: { cancel(): void; timer: boolean } | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Reused feed buffers of maxBatch rows, one per input: runs never overlap. */
  private readonly buffers = new Map<string, TypedArray>();
  private readonly rowSizes: Map<string, number>;
  private readonly now: () => number;
  readonly stats: BatcherStats = { batches: 0, rows: 0, requests: 0, busy: 0, timeouts: 0, queued: 0 };

  constructor(
    private readonly engine: Engine,
    private readonly opts: BatcherOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.rowSizes = new Map(engine.inputs.map((s) => [s.name, rowSize(s)]));
  }

  /** Values per row for each input. */
  rowSize(input: string): number {
    return this.rowSizes.get(input)!;
  }

  /** True when submit() would answer EDGELOOP_BUSY: lets the transport refuse before decoding a payload. */
  get full(): boolean {
    return this.queue.length - this.head >= this.opts.queueLimit;
  }

  /**
   * Queue `rows` rows (feeds hold rows x rowSize values per input); resolves with this request's
   * outputs: all of them, or with `firstOnly` at least the first (a batch of such requests only
   * asks the engine for that one).
   */
  submit(feeds: Readonly<Record<string, TypedArray>>, rows: number, deadline: number, firstOnly = false): Promise<RowsResult> {
    if (this.closed) return Promise.reject(new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon is shutting down'));
    if (this.queue.length - this.head >= this.opts.queueLimit) {
      this.stats.busy++;
      return Promise.reject(new EdgeloopError('EDGELOOP_BUSY', `model queue is full (${this.opts.queueLimit} requests waiting)`));
    }
    return new Promise<RowsResult>((resolve, reject) => {
      this.queue.push({ rows, feeds, firstOnly, deadline, settled: false, resolve, reject });
      this.queuedRows += rows;
      this.stats.queued = this.queue.length - this.head;
      this.schedule();
      this.sweeper ??= setInterval(() => this.sweep(), 50).unref();
    });
  }

  /** Stop taking requests; resolves when everything queued or running has been answered. */
  async drain(): Promise<void> {
    this.closed = true;
    if (this.scheduled) this.flushNow();
    if (!this.running && this.head === this.queue.length) return this.stopSweeper();
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.stopSweeper();
  }

  /** Answer everything still waiting with `err` (used when a drain times out). */
  abort(err: EdgeloopError): void {
    for (let i = this.head; i < this.queue.length; i++) this.settle(this.queue[i], err);
    for (const p of this.running ?? []) this.settle(p, err);
    this.queue = [];
    this.head = 0;
    this.queuedRows = 0;
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private schedule(): void {
    if (this.running) return; // the end of the running batch picks the queue up
    if (this.closed) return this.flushNow();
    const full = this.queuedRows >= this.opts.maxBatch;
    if (this.scheduled && !(full && this.scheduled.timer)) return;
    this.scheduled?.cancel();
    if (this.opts.batchWindow === 'fixed' && !full) {
      const t = setTimeout(() => this.flushNow(), this.opts.maxDelayMs);
      this.scheduled = { cancel: () => clearTimeout(t), timer: true };
    } else this.flushNextTurn();
  }

  /**
   * Run at the next turn of the event loop: every message already read in this turn joins the
   * batch, and reading goes on between batches (engines may run synchronously, and batches
   * back to back would hold the socket's reads and writes until the queue is empty).
   */
  private flushNextTurn(): void {
    const i = setImmediate(() => this.flushNow());
    this.scheduled = { cancel: () => clearImmediate(i), timer: false };
  }

  private flushNow(): void {
    this.scheduled?.cancel();
    this.scheduled = undefined;
    void this.flush();
  }

  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let rows = 0;
    const now = this.now();
    while (this.head < this.queue.length) {
      const next = this.queue[this.head];
      if (next.settled) {
        this.dequeue();
        continue;
      }
      if (next.deadline <= now) {
        this.dequeue();
        this.stats.timeouts++;
        this.settle(next, new EdgeloopError('EDGELOOP_TIMEOUT', 'request expired in the queue before it could run'));
        continue;
      }
      if (batch.length > 0 && rows + next.rows > this.opts.maxBatch) break;
      this.dequeue();
      batch.push(next);
      rows += next.rows;
    }
    // Drop taken requests from the array at once: kept there, they would outlive the young
    // generation and be promoted, growing the old space (and RSS) under load.
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.stats.queued = this.queue.length - this.head;
    return batch;
  }

  private dequeue(): void {
    this.queuedRows -= this.queue[this.head].rows;
    this.head++;
  }

  private async flush(): Promise<void> {
    if (this.running) return;
    const batch = this.takeBatch();
    if (batch.length === 0) return this.maybeIdle();
    this.running = batch;
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    try {
      const feeds = this.concatFeeds(batch, rows);
      const started = performance.now();
      const outputs = await this.engine.run(feeds, { firstOnly: batch.every((p) => p.firstOnly) });
      this.opts.onBatch?.(performance.now() - started, rows);
      this.stats.batches++;
      this.stats.rows += rows;
      this.stats.requests += batch.length;
      const shapes = Object.entries(outputs).map(([name, t]) => ({ name, t, width: t.dims.length > 1 ? t.data.length / t.dims[0] : 1, tail: t.dims.slice(1) }));
      let offset = 0;
      for (const p of batch) {
        const mine: RowsResult['outputs'] = {};
        for (const { name, t, width, tail } of shapes) mine[name] = { data: t.data.subarray(offset * width, (offset + p.rows) * width), width, tail };
        offset += p.rows;
        if (!p.settled) {
          p.settled = true;
          p.resolve({ outputs: mine, batchRows: rows });
        }
      }
    } catch (err) {
      const e = err instanceof EdgeloopError ? err : new EdgeloopError('EDGELOOP_INTERNAL', `inference failed: ${(err as Error).message}`, { cause: err });
      for (const p of batch) this.settle(p, e);
    } finally {
      this.running = undefined;
    }
    // Requests that arrived while the engine ran have waited already: the next turn runs them.
    if (this.head < this.queue.length) {
      if (this.closed) this.flushNow();
      else if (!this.scheduled) this.flushNextTurn();
    } else this.maybeIdle();
  }

  private maybeIdle(): void {
    if (this.running || this.head < this.queue.length) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private concatFeeds(batch: Pending[], rows: number): Record<string, EngineTensor> {
    const feeds: Record<string, EngineTensor> = {};
    for (const spec of this.engine.inputs) {
      const size = this.rowSizes.get(spec.name)!;
      const single = batch.length === 1 ? batch[0].feeds[spec.name] : undefined;
      let data: TypedArray;
      if (single) data = single;
      else {
        data = this.buffer(spec, size, rows);
        let offset = 0;
        for (const p of batch) {
          (data as Float32Array).set(p.feeds[spec.name] as Float32Array, offset);
          offset += p.rows * size;
        }
      }
      feeds[spec.name] = { dtype: spec.dtype, data, dims: [rows, ...spec.shape.slice(1)] };
    }
    return feeds;
  }

  private buffer(spec: TensorSpec, size: number, rows: number): TypedArray {
    const Ctor = TYPED_ARRAYS[spec.dtype];
    if (rows > this.opts.maxBatch) return new Ctor(rows * size);
    let buf = this.buffers.get(spec.name);
    if (!buf) {
      buf = new Ctor(this.opts.maxBatch * size);
      this.buffers.set(spec.name, buf);
    }
    return buf.subarray(0, rows * size);
  }

  private settle(p: Pending, err: EdgeloopError): void {
    if (p.settled) return;
    p.settled = true;
    p.reject(err);
  }

  /** Answer requests past their deadline, queued or running, so no client waits forever. */
  private sweep(): void {
    const now = this.now();
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i];
      if (!p.settled && p.deadline <= now) {
        this.stats.timeouts++;
        this.settle(p, new EdgeloopError('EDGELOOP_TIMEOUT', 'request expired in the queue before it could run'));
      }
    }
    for (const p of this.running ?? []) {
      if (!p.settled && p.deadline <= now) {
        this.stats.timeouts++;
        this.settle(p, new EdgeloopError('EDGELOOP_TIMEOUT', 'inference did not finish before the request deadline'));
      }
    }
    if (!this.running && this.head === this.queue.length && !this.closed) this.stopSweeper();
  }
}
