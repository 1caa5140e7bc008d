import { rowSize } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import type { ServedModel } from '../engine/index.js';
import { decodeRequest, type DecodeLimits, type MessageMeta } from '../transport/index.js';

/** Where and how to acknowledge, read from the payload (3.1.1 clients have no response topic). */
export interface FeedbackEnvelope {
  id?: string | number;
  replyTo?: string;
}

/** A parsed feedback message: labels by prediction id, or self-contained labelled rows. */
export interface ParsedFeedback {
  /** Feedback naming predictions: [id, label] pairs. */
  byId: { predictionId: string; label: number }[];
  /** Self-contained rows: raw inputs (rows x features) and one label per row. */
  samples?: { x: Float32Array; rows: number; labels: number[] };
}

export type FeedbackParse = { ok: true; envelope: FeedbackEnvelope; feedback: ParsedFeedback } | { ok: false; envelope: FeedbackEnvelope; error: EdgeloopError };

const err = (code: 'EDGELOOP_BAD_LABEL' | 'EDGELOOP_BAD_SHAPE' | 'EDGELOOP_BAD_INPUT' | 'EDGELOOP_BAD_JSON' | 'EDGELOOP_PAYLOAD_TOO_LARGE' | 'EDGELOOP_FEEDBACK_UNSUPPORTED' | 'EDGELOOP_UNKNOWN_PREDICTION', message: string) =>
  new EdgeloopError(code, message);

/** Why a model cannot take feedback, or undefined when it can (one float32 input, a classifier or a regressor). */
export function unsupportedReason(model: ServedModel): string | undefined {
  if (model.inputs.length !== 1 || model.inputs[0].dtype !== 'float32') return `model '${model.name}' has ${model.inputs.length} inputs or a non-float32 input; feedback takes single-input float32 models`;
  if (model.manifest.task === 'embedding') return `model '${model.name}' is an embedding model: there is nothing to label`;
  return undefined;
}

/** Classes of a classifier: its labels, else the width of its first output. */
export function classCount(model: ServedModel): number {
  return model.manifest.labels?.length ?? rowSize(model.manifest.outputs[0]);
}

/**
 * A label as a class index: a class name from the model's labels, or the index as a number
 * (or as a numeric string when the model has no label names). Regression: a finite value.
 */
export function parseLabel(v: unknown, model: ServedModel, field: string): number {
  if (model.manifest.task === 'regression') {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw err('EDGELOOP_BAD_LABEL', `'${field}' must be a finite number for regression model '${model.name}', got ${JSON.stringify(v)}`);
    return v;
  }
  const labels = model.manifest.labels;
  const k = classCount(model);
  if (typeof v === 'string') {
    const i = labels ? labels.indexOf(v) : /^\d+$/.test(v) ? Number(v) : -1;
    if (i >= 0 && i < k) return i;
    throw err('EDGELOOP_BAD_LABEL', `'${field}' "${v.slice(0, 64)}" is not a class of '${model.name}'${labels ? ` (classes: ${labels.slice(0, 20).join(', ')}${labels.length > 20 ? ', …' : ''})` : ` (0..${k - 1})`}`);
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < k) return v;
  throw err('EDGELOOP_BAD_LABEL', `'${field}' must be a class name or a class index 0..${k - 1}, got ${JSON.stringify(v)?.slice(0, 64)}`);
}

function readEnvelope(obj: Record<string, unknown>, envelope: FeedbackEnvelope): void {
  if (typeof obj.id === 'string' || typeof obj.id === 'number') envelope.id = obj.id;
  const r = obj.replyTo;
  if (typeof r === 'string' && r.length > 0 && r.length <= 1024 && !/[+#\0]/.test(r)) envelope.replyTo = r;
  if (obj.id !== undefined && envelope.id === undefined) throw err('EDGELOOP_BAD_INPUT', `'id' must be a string or a number`);
  if (r !== undefined && envelope.replyTo === undefined) throw err('EDGELOOP_BAD_INPUT', `'replyTo' must be a topic name without wildcards`);
}

/** The reply address of a payload that is not parsed further (model not found); empty when unreadable. */
export function looseEnvelope(payload: Buffer): FeedbackEnvelope {
  const envelope: FeedbackEnvelope = {};
  try {
    const obj = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    if (obj && typeof obj === 'object') readEnvelope(obj, envelope);
  } catch {
    // no reply address to read
  }
  return envelope;
}

/** The label of one item: "label" (class name or index), or "value" for regression. */
function itemLabel(obj: Record<string, unknown>, model: ServedModel, where: string): number {
  const regression = model.manifest.task === 'regression';
  const key = regression && obj.value !== undefined ? 'value' : 'label';
  if (obj[key] === undefined) throw err('EDGELOOP_BAD_LABEL', `${where}'${regression ? 'value' : 'label'}' is required`);
  return parseLabel(obj[key], model, `${where}${key}`);
}

function predictionIdOf(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw err('EDGELOOP_UNKNOWN_PREDICTION', `'${where}' must be the predictionId string of a reply, got ${JSON.stringify(v)?.slice(0, 64)}`);
  return v;
}

/**
 * Decode a feedback message (JSON) for a model. Never throws: problems come back as a coded
 * error with whatever reply address could be read. Forms:
 *   {"predictionId": "…", "label": "3"}              regression: {"predictionId": "…", "value": 151.2}
 *   {"items": [{"predictionId": "…", "label": "3"}, …]}
 *   {"inputs": [64 numbers], "label": "3"}            {"inputs": [[…], […]], "labels": ["3", "5"]}
 * Inputs take every JSON form inference takes (decoded by the same codec).
 */
export function parseFeedback(payload: Buffer, meta: MessageMeta, model: ServedModel, limits: DecodeLimits): FeedbackParse {
  const envelope: FeedbackEnvelope = {};
  try {
    if (payload.length > limits.maxPayloadBytes) {
      const d = decodeRequest(payload, meta, model.inputs, limits); // scans the envelope of an oversized payload
      return { ok: false, envelope: d.envelope, error: d.ok ? err('EDGELOOP_PAYLOAD_TOO_LARGE', `payload is ${payload.length} bytes`) : d.error };
    }
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch (e) {
      throw err('EDGELOOP_BAD_JSON', `payload is not valid JSON (${(e as Error).message})`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw err('EDGELOOP_BAD_JSON', 'feedback must be a JSON object such as {"predictionId":"…","label":"3"}');
    const obj = body as Record<string, unknown>;
    readEnvelope(obj, envelope);
    const why = unsupportedReason(model);
    if (why) throw err('EDGELOOP_FEEDBACK_UNSUPPORTED', why);
    const feedback: ParsedFeedback = { byId: [] };
    if (obj.predictionId !== undefined) {
      feedback.byId.push({ predictionId: predictionIdOf(obj.predictionId, 'predictionId'), label: itemLabel(obj, model, '') });
    } else if (obj.items !== undefined) {
      if (!Array.isArray(obj.items) || obj.items.length === 0) throw err('EDGELOOP_BAD_INPUT', `'items' must be a non-empty array of {"predictionId","label"}`);
      if (obj.items.length > limits.maxRowsPerRequest) throw err('EDGELOOP_PAYLOAD_TOO_LARGE', `'items' has ${obj.items.length} entries, the limit is ${limits.maxRowsPerRequest} per message`);
      obj.items.forEach((it, i) => {
        if (!it || typeof it !== 'object' || Array.isArray(it)) throw err('EDGELOOP_BAD_INPUT', `'items[${i}]' must be an object {"predictionId","label"}`);
        const item = it as Record<string, unknown>;
        feedback.byId.push({ predictionId: predictionIdOf(item.predictionId, `items[${i}].predictionId`), label: itemLabel(item, model, `items[${i}].`) });
      });
    } else if (obj.inputs !== undefined) {
      const d = decodeRequest(payload, meta, model.inputs, limits);
      if (!d.ok) throw d.error;
      const rows = d.rows;
      const regression = model.manifest.task === 'regression';
      const many = regression ? (obj.values ?? obj.labels) : obj.labels;
      const one = regression ? (obj.value ?? obj.label) : obj.label;
      let labels: number[];
      if (many !== undefined) {
        const name = regression && obj.values !== undefined ? 'values' : 'labels';
        if (!Array.isArray(many) || many.length !== rows) throw err('EDGELOOP_BAD_SHAPE', `'${name}' must have one label per input row (${rows}), got ${Array.isArray(many) ? many.length : typeof many}`);
        labels = many.map((v, i) => parseLabel(v, model, `${name}[${i}]`));
      } else if (one !== undefined) {
        if (rows !== 1) throw err('EDGELOOP_BAD_SHAPE', `'inputs' has ${rows} rows: give '${regression ? 'values' : 'labels'}' with one label per row`);
        labels = [parseLabel(one, model, regression && obj.value !== undefined ? 'value' : 'label')];
      } else {
        throw err('EDGELOOP_BAD_LABEL', `'${regression ? 'value' : 'label'}' (one row) or '${regression ? 'values' : 'labels'}' (one per row) is required`);
      }
      feedback.samples = { x: d.feeds[model.inputs[0].name] as Float32Array, rows, labels };
    } else {
      throw err('EDGELOOP_BAD_INPUT', `feedback needs 'predictionId', 'items' or 'inputs'`);
    }
    return { ok: true, envelope, feedback };
  } catch (e) {
    const error = e instanceof EdgeloopError ? e : new EdgeloopError('EDGELOOP_INTERNAL', (e as Error).message, { cause: e });
    return { ok: false, envelope, error };
  }
}
