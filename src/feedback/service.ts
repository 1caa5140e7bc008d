import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/index.js';
import { EdgeloopError, asEdgeloopError, type ErrorCode } from '../errors.js';
import type { ServedModel } from '../engine/index.js';
import type { DecodeLimits, IncomingRequest, PublishReply, Topics } from '../transport/index.js';
import { WindowAggregates, judgeAlert, liveAccuracy, type AccuracyEvent, type LiveAccuracy } from './accuracy.js';
import { looseEnvelope, parseFeedback, unsupportedReason, type FeedbackEnvelope, type ParsedFeedback } from './intake.js';
import { PredictionRecorder } from './recorder.js';
import { FeedbackStore, type ModelCounts, type StoredAccuracyAlert } from './store.js';
import type { FeedbackSource, LabelledBatch, LabelledListener, NewLabelledRow } from './types.js';

/** Rows written per transaction in a flush (a few milliseconds of the event loop each). */
const FLUSH_CHUNK_ROWS = 256;

export type FeedbackOptions = ResolvedConfig['feedback'];

export interface FeedbackServiceOptions {
  store: FeedbackStore;
  /** The device config's `feedback` section (resolved). */
  options: FeedbackOptions;
  /** Payload and row limits (the config's `serving` section): the same as inference. */
  limits: DecodeLimits;
  /** The serving version of a model. */
  models: (name: string) => ServedModel | undefined;
  topics?: Topics;
  /** How acknowledgements leave (the transport's publish). */
  publish?: PublishReply;
  log?: Logger;
  now?: () => number;
  /** Accuracy alert raised or cleared (after it is stored): publish on edgeloop/{deviceId}/events/accuracy. */
  onEvent?: (event: AccuracyEvent) => void;
  /** Close the store on close() (when the service opened it). */
  ownsStore?: boolean;
}

/** One model's live feedback state, for `edgeloop feedback status` and GET /feedback. */
export interface FeedbackModelStatus {
  model: string;
  version: string | null;
  accepted: number;
  duplicates: number;
  refused: Partial<Record<ErrorCode, number>>;
  pendingRows: number;
  ring: { rows: number; bytes: number; capacity: number };
  stored: ModelCounts | null;
  liveAccuracy: LiveAccuracy | null;
}

export interface FeedbackStatus {
  enabled: boolean;
  flushIntervalMs: number;
  models: FeedbackModelStatus[];
}

type PendingRow = NewLabelledRow & { needsPrediction: boolean };

interface ModelState {
  tokens: number;
  refilledAt: number;
  pending: PendingRow[];
  accepted: number;
  duplicates: number;
  refused: Partial<Record<ErrorCode, number>>;
}

/**
 * Labelled feedback for a daemon: the prediction recorder on the request path, intake of
 * feedback messages (acknowledged like inference replies), batched writes to the labelled
 * store (one transaction per flush), live accuracy and accuracy alerts after each flush.
 */
export class FeedbackService {
  readonly recorder: PredictionRecorder;
  readonly options: FeedbackOptions;
  private readonly state = new Map<string, ModelState>();
  private readonly listeners = new Set<LabelledListener>();
  private readonly live = new Map<string, LiveAccuracy>();
  private readonly aggregates = new WindowAggregates();
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private closed = false;

  constructor(private readonly opts: FeedbackServiceOptions) {
    this.options = opts.options;
    this.now = opts.now ?? Date.now;
    this.recorder = new PredictionRecorder(this.options.enabled ? this.options.ringSize : 0);
  }

  /** A service with its own connection to `<home>/edgeloop.db` (closed by close()). */
  static open(home: string, opts: Omit<FeedbackServiceOptions, 'store' | 'ownsStore'>): FeedbackService {
    return new FeedbackService({ ...opts, store: FeedbackStore.open(home, { synchronous: 'NORMAL' }), ownsStore: true });
  }

  get store(): FeedbackStore {
    return this.opts.store;
  }

  /** Told after each flush with the rows that just became durable; returns an unsubscribe function. */
  onLabelled(listener: LabelledListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Handle one feedback message (edgeloop/{deviceId}/feedback/{model}); never throws to the
   * transport. Returns true when an acknowledgement is on its way (someone waits for it).
   */
  handle(req: IncomingRequest): boolean {
    // Synchronous up to the acknowledgement: fire-and-forget feedback (most of it) makes no promise.
    const ack = this.process(req);
    if (!ack) return false;
    this.inFlight++;
    ack.catch((err) => this.opts.log?.error({ err }, 'feedback acknowledgement could not be published')).finally(() => this.inFlight--);
    return true;
  }

  /**
   * Accept labelled rows (the admin API's import, tests): stored at the next flush, predicted
   * there by the serving version. Whole or nothing; not rate limited (the caller flushes).
   */
  addRows(modelName: string, x: Float32Array, rows: number, labels: readonly number[], source: FeedbackSource): number {
    const model = this.requireModel(modelName);
    return this.accept(model, { byId: [], samples: { x, rows, labels: [...labels] } }, source, false).accepted;
  }

  /** Write what is pending (one transaction for all models), then tell listeners and judge alerts. Flushes run one at a time. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.doFlush()).catch((err) => this.opts.log?.error({ err }, 'feedback flush failed'));
    return this.flushing;
  }

  /** Live accuracy of the serving version of a model (cached after each flush; computed when missing). */
  liveAccuracy(model: string): LiveAccuracy | null {
    const m = this.opts.models(model);
    if (!m || unsupportedReason(m)) return null;
    const cached = this.live.get(model);
    if (cached && cached.version === m.version) return cached;
    const live = liveAccuracy(this.store, m, this.options, this.aggregates);
    live.alert = this.alertFor(model);
    this.live.set(model, live);
    return live;
  }

  /** Open accuracy alerts of every model. */
  openAlerts(): StoredAccuracyAlert[] {
    return this.store.alerts({ open: true });
  }

  /** The open accuracy alert of a model, or null. */
  alertFor(model: string): StoredAccuracyAlert | null {
    return this.store.alerts({ open: true, model, limit: 1 })[0] ?? null;
  }

  status(served: readonly string[] = []): FeedbackStatus {
    const counts = new Map(this.store.counts().map((c) => [c.model, c]));
    const names = [...new Set([...served, ...this.state.keys(), ...counts.keys()])].sort();
    return {
      enabled: this.options.enabled,
      flushIntervalMs: this.options.flushIntervalMs,
      models: names.map((name) => {
        const st = this.state.get(name);
        const ring = this.recorder.ring(name);
        return {
          model: name,
          version: this.opts.models(name)?.version ?? null,
          accepted: st?.accepted ?? 0,
          duplicates: st?.duplicates ?? 0,
          refused: st?.refused ?? {},
          pendingRows: st?.pending.length ?? 0,
          ring: { rows: ring?.size ?? 0, bytes: ring?.bytes ?? 0, capacity: this.options.ringSize },
          stored: counts.get(name) ?? null,
          liveAccuracy: this.liveAccuracy(name),
        };
      }),
    };
  }

  /** Stop the timer, wait for acknowledgements in flight, write what is pending, close the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (let i = 0; i < 100 && this.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
    await this.flush();
    if (this.opts.ownsStore) this.store.close();
  }

  /** Handle a message; returns the publishing of its acknowledgement, or undefined when nobody asked for one. */
  private process(req: IncomingRequest): Promise<void> | undefined {
    const name = this.opts.topics?.feedbackModelOf(req.topic) ?? '';
    const model = this.opts.models(name);
    let envelope: FeedbackEnvelope = {};
    let body: Record<string, unknown>;
    try {
      if (!this.options.enabled) throw new EdgeloopError('EDGELOOP_FEEDBACK_UNSUPPORTED', 'feedback is disabled on this device (feedback.enabled)');
      if (!model) {
        envelope = looseEnvelope(req.payload);
        throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${name.slice(0, 64)}' is not served here`);
      }
      const parsed = parseFeedback(req.payload, req.meta, model, this.opts.limits);
      envelope = parsed.envelope;
      if (!parsed.ok) throw parsed.error;
      const r = this.accept(model, parsed.feedback, 'mqtt', true);
      body = { accepted: r.accepted, model: model.name };
      if (r.duplicates) body.duplicates = r.duplicates;
    } catch (err) {
      const e = asEdgeloopError(err);
      if (e.code === 'EDGELOOP_INTERNAL') this.opts.log?.error({ err, model: name }, 'feedback failed');
      if (model) {
        const refused = this.stateOf(model.name).refused;
        refused[e.code] = (refused[e.code] ?? 0) + 1;
      }
      body = { error: e.toJSON() };
      if (model) body.model = model.name;
    }
    const publish = this.opts.publish;
    // Acknowledged exactly as inference replies: MQTT 5 response topic, else replyTo; else nobody
    // asked (most feedback is fire and forget: no acknowledgement is even written).
    const to = req.responseTopic || envelope.replyTo;
    if (!publish || !to) return undefined;
    if (envelope.id !== undefined) body.id = envelope.id;
    const text = JSON.stringify(body);
    try {
      return publish(to, text, req.qos, req.responseTopic ? req.correlationData : undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** All of a message or nothing: limits first, then every id resolved, then the rows queued. */
  private accept(model: ServedModel, fb: ParsedFeedback, source: FeedbackSource, limited: boolean): { accepted: number; duplicates: number } {
    const st = this.stateOf(model.name);
    const n = fb.byId.length + (fb.samples?.rows ?? 0);
    const o = this.options;
    if (limited) {
      if (st.pending.length + n > o.maxPendingRows) throw new EdgeloopError('EDGELOOP_FEEDBACK_LIMITED', `${st.pending.length} labelled rows of '${model.name}' wait to be written (limit feedback.maxPendingRows ${o.maxPendingRows})`);
      const now = this.now();
      st.tokens = Math.min(o.burst, st.tokens + ((now - st.refilledAt) / 1000) * o.ratePerSecond);
      st.refilledAt = now;
      if (st.tokens < n) throw new EdgeloopError('EDGELOOP_FEEDBACK_LIMITED', `feedback for '${model.name}' is over its rate limit (feedback.ratePerSecond ${o.ratePerSecond}, burst ${o.burst}); send it more slowly`);
    }
    const at = this.now();
    const rows: PendingRow[] = [];
    const claimed: number[] = [];
    let duplicates = 0;
    const ring = this.recorder.ring(model.name);
    for (const item of fb.byId) {
      const counter = this.recorder.ids.parse(item.predictionId);
      const entry = counter === undefined ? undefined : ring?.find(counter, true);
      if (entry === 'duplicate') {
        duplicates++;
        continue;
      }
      if (!entry) {
        for (const c of claimed) ring!.unclaim(c);
        throw new EdgeloopError('EDGELOOP_UNKNOWN_PREDICTION', `'predictionId' ${item.predictionId.slice(0, 64)} is not a recent prediction of '${model.name}' (unknown, from before a restart, or older than the last ${o.ringSize} kept)`);
      }
      claimed.push(counter!);
      rows.push({ model: model.name, version: entry.version, inputs: entry.inputs, label: item.label, predicted: Number.isNaN(entry.predicted) ? null : entry.predicted, predictionId: item.predictionId, source, at, needsPrediction: false });
    }
    const s = fb.samples;
    if (s) {
      const width = s.x.length / s.rows;
      for (let r = 0; r < s.rows; r++) {
        rows.push({ model: model.name, version: model.version, inputs: s.x.slice(r * width, (r + 1) * width), label: s.labels[r], predicted: null, source, at, needsPrediction: true });
      }
    }
    if (limited) st.tokens -= n;
    st.pending.push(...rows);
    st.accepted += rows.length;
    st.duplicates += duplicates;
    return { accepted: rows.length, duplicates };
  }

  private async doFlush(): Promise<void> {
    const batch: PendingRow[] = [];
    for (const st of this.state.values()) batch.push(...st.pending.splice(0));
    if (batch.length === 0) return;
    await this.predictSamples(batch);
    const tasks = new Map<string, string>();
    for (const r of batch) if (!tasks.has(r.model)) tasks.set(r.model, this.opts.models(r.model)?.manifest.task ?? 'classification');
    // A transaction per chunk, the event loop served between them: a flush of thousands of rows
    // (a burst, an import) held serving for tens of milliseconds. Pruned once, at the end, and
    // listeners told once, with every row the flush wrote (as with one transaction).
    const ids: number[] = [];
    const holdout: boolean[] = [];
    let failure: unknown;
    for (let from = 0; from < batch.length; from += FLUSH_CHUNK_ROWS) {
      if (from > 0) await new Promise((r) => setImmediate(r));
      try {
        const written = this.store.write(batch.slice(from, from + FLUSH_CHUNK_ROWS), tasks, this.options, false);
        ids.push(...written.ids);
        holdout.push(...written.holdout);
      } catch (err) {
        // SQLite busy or full: keep the rows not written for the next flush, within the pending bound.
        for (const r of batch.slice(from)) {
          const st = this.stateOf(r.model);
          if (st.pending.length < this.options.maxPendingRows) st.pending.push(r);
        }
        failure = err;
        break;
      }
    }
    if (ids.length > 0) {
      try {
        this.store.pruneModels(tasks, this.options);
      } catch (err) {
        failure ??= err;
      }
      this.announce(batch.slice(0, ids.length), ids, holdout);
    }
    if (failure) throw failure;
  }

  /** Rows just written: into the live-accuracy windows, to the listeners, then alerts judged. */
  private announce(rows: PendingRow[], ids: number[], holdout: boolean[]): void {
    const byModel = new Map<string, number[]>();
    rows.forEach((r, i) => (byModel.get(r.model) ?? byModel.set(r.model, []).get(r.model)!).push(i));
    for (const [model, idx] of byModel) {
      this.aggregates.add(model, idx.map((i) => rows[i]));
      const b = batchOf(rows, idx, ids);
      const h = idx.map((i) => holdout[i]);
      for (const l of this.listeners) {
        try {
          l(model, b, h);
        } catch (err) {
          this.opts.log?.error({ err, model }, 'labelled-rows listener failed');
        }
      }
      this.judge(model);
    }
  }

  /** Self-contained samples have no stored prediction: the serving version predicts them here, off the request path. */
  private async predictSamples(batch: PendingRow[]): Promise<void> {
    const need = new Map<string, PendingRow[]>();
    for (const r of batch) if (r.needsPrediction) (need.get(r.model) ?? need.set(r.model, []).get(r.model)!).push(r);
    for (const [name, rows] of need) {
      const model = this.opts.models(name);
      const width = model?.inputs[0].rowSize;
      const step = Math.max(1, this.opts.limits.maxRowsPerRequest);
      for (let i = 0; model && i < rows.length; i += step) {
        const part = rows.slice(i, i + step).filter((r) => r.inputs.length === width);
        if (part.length === 0) continue;
        const x = new Float32Array(part.length * width!);
        part.forEach((r, j) => x.set(r.inputs, j * width!));
        try {
          // predict() standardises x in place: x is our copy.
          const { predictions } = await model.predict({ [model.inputs[0].name]: x }, part.length, Date.now() + 30_000);
          part.forEach((r, j) => {
            const p = predictions[j] as { index?: number; value?: number };
            r.predicted = p.index ?? p.value ?? null;
            r.version = model.version;
          });
        } catch (err) {
          // Stored without a prediction; never counted against the model's health.
          this.opts.log?.debug({ model: name, code: asEdgeloopError(err).code }, 'feedback samples could not be predicted');
        }
      }
    }
  }

  private judge(name: string): void {
    const m = this.opts.models(name);
    if (!m || unsupportedReason(m)) return;
    const live = liveAccuracy(this.store, m, this.options, this.aggregates);
    const event = judgeAlert(this.store, live, this.options.alert, this.now());
    this.live.set(name, live);
    if (event) {
      this.opts.log?.[event.type === 'accuracy-alert' ? 'warn' : 'info']({ accuracy: event }, event.message);
      this.opts.onEvent?.(event);
    }
  }

  /** The serving version of a model that takes feedback; coded errors otherwise. */
  servedModel(name: string): ServedModel {
    return this.requireModel(name);
  }

  private requireModel(name: string): ServedModel {
    const model = this.opts.models(name);
    if (!model) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${name}' is not served here`);
    const why = unsupportedReason(model);
    if (why) throw new EdgeloopError('EDGELOOP_FEEDBACK_UNSUPPORTED', why);
    return model;
  }

  private stateOf(model: string): ModelState {
    let st = this.state.get(model);
    if (!st) {
      st = { tokens: this.options.burst, refilledAt: this.now(), pending: [], accepted: 0, duplicates: 0, refused: {} };
      this.state.set(model, st);
    }
    return st;
  }
}

function batchOf(rows: readonly PendingRow[], idx: readonly number[], ids: readonly number[]): LabelledBatch {
  const features = rows[idx[0]].inputs.length;
  const x = new Float32Array(idx.length * features);
  idx.forEach((i, j) => x.set(rows[i].inputs.subarray(0, features), j * features));
  return {
    x,
    y: Float32Array.from(idx, (i) => rows[i].label),
    predicted: Float32Array.from(idx, (i) => rows[i].predicted ?? NaN),
    rows: idx.length,
    features,
    ids: idx.map((i) => ids[i]),
    at: idx.map((i) => rows[i].at),
    versions: idx.map((i) => rows[i].version),
  };
}
