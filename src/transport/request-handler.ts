import type { Logger } from 'pino';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import { busyError, type PredictResult, type ServedModel, type TypedArray } from '../engine/index.js';
import { decodeRequest, type DecodeLimits, type Envelope, type MessageMeta } from './payload-codec.js';
import { rowsReplyJson } from './reply-json.js';
import { replyTopicProblem, topicProblem, type Topics } from './topics.js';

/** An incoming request as the transport hands it over. */
export interface IncomingRequest {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  meta: MessageMeta;
  /** MQTT 5 §4.10 request/response */
  responseTopic?: string;
  correlationData?: Buffer;
  /** MQTT 5 message expiry: the client's own deadline, in seconds. */
  messageExpiryInterval?: number;
}

/** How a reply leaves: topic, JSON text, QoS and (MQTT 5) correlation data. */
export type PublishReply = (topic: string, payload: string, qos: 0 | 1 | 2, correlationData?: Buffer) => Promise<void>;

export interface RequestHandlerOptions {
  topics: Topics;
  models: (name: string) => ServedModel | undefined;
  publish: PublishReply;
  limits: DecodeLimits;
  timeoutMs: number;
  log?: Logger;
  /** Called after every successful prediction with the (standardised) feeds: the drift tap. Must be cheap. */
  onServed?: ServedTap;
  /** Prediction ids and the ring of recent predictions (src/feedback). Must be cheap: it runs on every request. */
  predictions?: PredictionTap;
  /** Metrics (src/metrics): every answer's outcome, 'OK' or its error code, and its seconds in the daemon. Must be cheap. */
  onOutcome?: (model: ServedModel | undefined, code: string, seconds: number) => void;
  /** OIP v2 tensor requests (src/tensor): a request whose 'inputs' is an array of tensor objects is answered there, whole. */
  tensors?: { accepts(req: IncomingRequest): boolean; handle(req: IncomingRequest, model: ServedModel): Promise<void> };
  /** Requests read and not yet answered before waitForRoom() holds the transport's intake (backpressure). */
  intakeLimit?: number;
}

/** The drift tap: told every successful prediction with its (standardised) feeds. */
export type ServedTap = (model: ServedModel, feeds: Record<string, TypedArray>, rows: number, predictions: PredictResult['predictions']) => void;

/** What every protocol (MQTT rows, OIP tensors, HTTP) hands each served request to: feedback's prediction ring and the drift tap. */
export interface RequestTaps {
  predictions?: PredictionTap;
  onServed?: ServedTap;
}

/**
 * Keeps what feedback needs of each request: `before` sees the raw decoded feeds (predict()
 * standardises them in place afterwards) and returns a token, `after` gets the predictions of
 * a successful request and sets `predictionId` on each of them.
 */
export interface PredictionTap {
  before(model: ServedModel, feeds: Record<string, TypedArray>, rows: number): unknown;
  after(model: ServedModel, token: unknown, predictions: PredictResult['predictions']): void;
}

const SERVER_FAULTS = new Set(['EDGELOOP_INTERNAL', 'EDGELOOP_TIMEOUT']);

/**
 * Turns an MQTT request into a reply: decode, validate, queue on the model, post-process,
 * publish. Every request gets exactly one answer, success or a coded error, at the address
 * the client asked for; nothing here throws to the transport.
 */
export class RequestHandler {
  private accepting = true;
  private inFlight = 0;
  /** When the last request arrived (ms, monotonic): shutdown waits for the broker to go quiet. */
  lastArrival = 0;
  private idleWaiters: (() => void)[] = [];
  /** Read, reply not yet computed: what backpressure bounds (a reply being published no longer counts). */
  private unanswered = 0;
  private room: (() => void)[] = [];

  constructor(private readonly opts: RequestHandlerOptions) {}

  /**
   * Undefined while there is room for more requests; otherwise a promise that resolves once
   * the unanswered requests are back under three quarters of the intake limit. The transport
   * holds its reading (and its acknowledgements) on it, so the backlog stays at the broker.
   */
  waitForRoom(): Promise<void> | undefined {
    const limit = this.opts.intakeLimit;
    if (limit === undefined || this.unanswered < limit) return undefined;
    if (this.room.length === 0) this.opts.log?.warn({ unanswered: this.unanswered }, 'intake full: not reading requests until some are answered');
    return new Promise<void>((resolve) => this.room.push(resolve));
  }

  private answered(): void {
    this.unanswered--;
    if (this.room.length > 0 && this.unanswered < Math.ceil((this.opts.intakeLimit ?? 0) * 0.75)) for (const w of this.room.splice(0)) w();
  }

  /** Nothing read is waiting for its answer (a reply being published is answered already). */
  get idle(): boolean {
    return this.unanswered === 0;
  }

  /** Requests being decoded, run or published. */
  get pending(): number {
    return this.inFlight;
  }

  /** From now on, answer new requests with EDGELOOP_SHUTTING_DOWN. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves when every accepted request has been answered and its reply handed to the client. */
  async settled(): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  handle(req: IncomingRequest): void {
    this.lastArrival = performance.now();
    this.inFlight++;
    this.unanswered++;
    // One reaction for both outcomes (not catch + finally): this runs for every request.
    this.process(req).then(this.done, this.failed);
  }

  private readonly done = (): void => {
    if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  };

  private readonly failed = (err: unknown): void => {
    this.opts.log?.error({ err }, 'reply could not be published');
    this.done();
  };

  private async process(req: IncomingRequest): Promise<void> {
    const started = performance.now();
    const modelName = this.opts.topics.modelOf(req.topic) ?? '';
    const model = this.opts.models(modelName);
    // --- OIP v2 tensors (issue 11): decoded, run, answered and counted by src/tensor ---
    // A model that takes no inputs has no rows to send: every request to it is a tensor request.
    if (model && this.opts.tensors && (model.inputs.length === 0 || this.opts.tensors.accepts(req))) return this.opts.tensors.handle(req, model).finally(() => this.answered());
    let envelope: Envelope = {};
    let text: string;
    let outcome = 'OK'; // metrics (onOutcome)
    // Only the engine failing a well-formed request with the daemon's own deadline counts
    // against the model: a client must not be able to fail a version on trial.
    let modelRan = false;
    let clientDeadline = false;
    const responseProblem = req.responseTopic !== undefined ? replyTopicProblem(req.responseTopic) : undefined;
    // Overload: refuse before decoding when the reply address needs no decoding (MQTT 5), with
    // a reply made once per model version: under overload most requests take this path.
    if (model?.busy && this.accepting && req.responseTopic !== undefined && !responseProblem) {
      this.answered();
      this.opts.onOutcome?.(model, 'EDGELOOP_BUSY', (performance.now() - started) / 1000);
      return this.send(req.responseTopic, busyReply(model), req.qos, req.correlationData);
    }
    try {
      if (!this.accepting) throw new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon is shutting down');
      if (!model) {
        // Still read the envelope so the error reaches the client's reply address.
        envelope = decodeRequest(req.payload, req.meta, [{ name: 'input', dtype: 'float32', rowSize: 1 }], this.opts.limits).envelope;
        throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${modelName}' is not served here`);
      }
      const decoded = decodeRequest(req.payload, req.meta, model.inputs, this.opts.limits);
      envelope = decoded.envelope;
      if (!decoded.ok) throw decoded.error;
      if (responseProblem) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `the MQTT 5 response topic cannot be a reply address: ${responseProblem}`);
      const timeoutMs = this.timeoutFor(req, envelope);
      clientDeadline = timeoutMs < this.opts.timeoutMs;
      const deadline = Date.now() + timeoutMs;
      // Refused before the prediction ring keeps a copy of the feeds (3.1.1: the reply address needed decoding).
      if (model.busy) throw busyError(model);
      const tap = this.opts.predictions;
      const token = tap?.before(model, decoded.feeds, decoded.rows);
      modelRan = true;
      const result = await model.predict(decoded.feeds, decoded.rows, deadline);
      modelRan = false;
      this.opts.onServed?.(model, decoded.feeds, decoded.rows, result.predictions);
      if (token !== undefined) tap!.after(model, token, result.predictions);
      const latencyMs = round3(performance.now() - started);
      // One row (the common IoT request): its id at the top level too; several rows: per prediction.
      const predictionId = token !== undefined && decoded.rows === 1 ? (result.predictions[0] as { predictionId?: string }).predictionId : undefined;
      model.health.record(true, latencyMs);
      text = rowsReplyJson(model, result.predictions, latencyMs, predictionId, envelope.id);
    } catch (err) {
      const e = asEdgeloopError(err);
      outcome = e.code;
      if (e.code === 'EDGELOOP_INTERNAL') this.opts.log?.error({ err, model: modelName }, 'request failed');
      else this.opts.log?.debug({ code: e.code, msg: e.message, model: modelName }, 'request refused');
      const body: Record<string, unknown> = { error: e.toJSON() };
      if (model) {
        body.model = model.name;
        body.version = model.version;
      }
      if (envelope.id !== undefined) body.id = envelope.id;
      // Only failures of the model count against its health, not the client's bad input nor
      // a deadline the client chose shorter than the daemon's.
      if (model && modelRan && SERVER_FAULTS.has(e.code) && !(e.code === 'EDGELOOP_TIMEOUT' && clientDeadline)) model.health.record(false, performance.now() - started);
      text = JSON.stringify(body);
    }
    this.answered();
    this.opts.onOutcome?.(model, outcome, (performance.now() - started) / 1000);
    // Published once, outside the try: a broker failure is logged by handle(), not answered twice.
    await this.reply(req, envelope, modelName, text, responseProblem === undefined);
  }

  private timeoutFor(req: IncomingRequest, envelope: Envelope): number {
    let ms = envelope.timeoutMs ?? this.opts.timeoutMs;
    if (req.messageExpiryInterval) ms = Math.min(ms, req.messageExpiryInterval * 1000);
    return ms;
  }

  /** MQTT 5 response topic first, then the payload's replyTo, else the model's predictions topic. */
  private reply(req: IncomingRequest, envelope: Envelope, modelName: string, text: string, responseTopicOk: boolean): Promise<void> {
    const qos = req.qos;
    if (req.responseTopic && responseTopicOk) return this.send(req.responseTopic, text, qos, req.correlationData);
    if (envelope.replyTo) return this.send(envelope.replyTo, text, qos);
    return this.send(this.opts.topics.predictions(validTopicLevel(modelName) ? modelName : '_unknown'), text, qos);
  }

  /** Last check before the broker: a topic it refuses would cost the connection, so drop and log. */
  private send(topic: string, text: string, qos: 0 | 1 | 2, correlationData?: Buffer): Promise<void> {
    const problem = topicProblem(topic);
    if (problem) {
      this.opts.log?.warn({ topic: JSON.stringify(topic.slice(0, 200)), problem }, 'reply dropped: the broker would refuse its topic');
      return Promise.resolve();
    }
    return this.opts.publish(topic, text, qos, correlationData);
  }
}

const busyReplies = new WeakMap<ServedModel, string>();

/** The EDGELOOP_BUSY reply of a model version (no id: MQTT 5 clients match it by correlation data). */
function busyReply(model: ServedModel): string {
  let text = busyReplies.get(model);
  if (text === undefined) busyReplies.set(model, (text = JSON.stringify({ error: busyError(model).toJSON(), model: model.name, version: model.version })));
  return text;
}

function validTopicLevel(s: string): boolean {
  return s.length > 0 && !/[+#/\0]/.test(s);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
