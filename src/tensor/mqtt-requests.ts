import type { Logger } from 'pino';
import type { ServedModel } from '../engine/index.js';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import type { IncomingRequest, RequestTaps, Topics } from '../transport/index.js';
import { replyTopicProblem, topicProblem } from '../transport/topics.js';
import { frame, isFramed, unframe } from './binary.js';
import { encodeInferResponse, parseInferRequest } from './request.js';
import { runTensors } from './runner.js';

const INPUTS = Buffer.from('"inputs"');

/**
 * Cheap test for an OIP request on MQTT: an "OIP1" frame, or JSON whose `inputs` is an array
 * of tensor objects (`"inputs": [{`); row requests have numbers, rows or an object there.
 */
export function isOipPayload(payload: Buffer): boolean {
  if (isFramed(payload)) return true;
  let i = payload.indexOf(INPUTS);
  if (i < 0) return false;
  i += INPUTS.length;
  const skip = () => {
    while (i < payload.length && (payload[i] === 0x20 || payload[i] === 0x0a || payload[i] === 0x0d || payload[i] === 0x09)) i++;
  };
  skip();
  if (payload[i++] !== 0x3a) return false; // ':'
  skip();
  if (payload[i++] !== 0x5b) return false; // '['
  skip();
  return payload[i] === 0x7b; // '{'
}

export interface TensorRequestsOptions {
  topics: Topics;
  /** Publishes text or bytes (mqtt.js sends a Buffer as it is). */
  publish: (topic: string, payload: string | Buffer, qos: 0 | 1 | 2, correlationData?: Buffer) => Promise<void>;
  limits: { maxPayloadBytes: number; timeoutMs: number; queueLimit: number };
  accepting: () => boolean;
  /** Feedback's prediction ring and the drift tap, as row requests have them. */
  taps?: () => RequestTaps;
  onOutcome?: (model: ServedModel, code: string, seconds: number) => void;
  log?: Logger;
}

/**
 * OIP v2 requests over MQTT (the request handler hands them over whole): decode JSON or an
 * OIP1 frame, run, answer at the same address rules as row requests (MQTT 5 response topic,
 * else `replyTo`, else the predictions topic). A binary reply (framed) when the request asks
 * for binary outputs (`parameters.binary_data_output` or an output's `parameters.binary_data`).
 */
export class TensorRequests {
  constructor(private readonly opts: TensorRequestsOptions) {}

  accepts(req: IncomingRequest): boolean {
    return isOipPayload(req.payload);
  }

  async handle(req: IncomingRequest, model: ServedModel): Promise<void> {
    const started = performance.now();
    const envelope: { id?: string | number; replyTo?: string } = {};
    let payload: string | Buffer;
    let code = 'OK';
    try {
      if (!this.opts.accepting()) throw new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon is shutting down');
      if (req.payload.length > this.opts.limits.maxPayloadBytes) throw new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `payload is ${req.payload.length} bytes, the limit is ${this.opts.limits.maxPayloadBytes}`);
      const { header, binary } = isFramed(req.payload) ? unframe(req.payload) : { header: req.payload, binary: Buffer.alloc(0) };
      const request = parseInferRequest(header, binary, envelope);
      let timeoutMs = request.timeoutMs ?? this.opts.limits.timeoutMs;
      if (req.messageExpiryInterval) timeoutMs = Math.min(timeoutMs, req.messageExpiryInterval * 1000);
      const { outputs, predictionIds } = await runTensors(model, request, Date.now() + timeoutMs, this.opts.limits, this.opts.taps?.() ?? {});
      const reply = encodeInferResponse({ model: model.name, version: model.version, id: request.id, predictionIds }, outputs, request.binaryOutputs);
      payload = reply.buffers.length ? frame(reply.header, reply.buffers) : reply.header;
      model.health.record(true, performance.now() - started);
    } catch (err) {
      const e = asEdgeloopError(err);
      code = e.code;
      if (e.code === 'EDGELOOP_INTERNAL') {
        this.opts.log?.error({ err, model: model.name }, 'tensor request failed');
        model.health.record(false, performance.now() - started);
      }
      const body: Record<string, unknown> = { error: e.toJSON(), model_name: model.name, model_version: model.version };
      if (envelope.id !== undefined) body.id = envelope.id;
      payload = JSON.stringify(body);
    }
    this.opts.onOutcome?.(model, code, (performance.now() - started) / 1000);
    await this.reply(req, envelope.replyTo, model.name, payload);
  }

  private reply(req: IncomingRequest, replyTo: string | undefined, modelName: string, payload: string | Buffer): Promise<void> {
    let topic: string;
    let correlation: Buffer | undefined;
    if (req.responseTopic && !replyTopicProblem(req.responseTopic)) {
      topic = req.responseTopic;
      correlation = req.correlationData;
    } else topic = replyTo ?? this.opts.topics.predictions(modelName);
    const problem = topicProblem(topic);
    if (problem) {
      this.opts.log?.warn({ topic: JSON.stringify(topic.slice(0, 200)), problem }, 'reply dropped: the broker would refuse its topic');
      return Promise.resolve();
    }
    return this.opts.publish(topic, payload, req.qos, correlation);
  }
}
