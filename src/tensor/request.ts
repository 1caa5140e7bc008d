import type { Dtype } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { tensorBytes, tensorFromBytes } from './binary.js';
import { DTYPE_TO_OIP } from './datatypes.js';
import { decodeJsonTensor, tensorHeader, toValues, type JsonTensor, type Tensor } from './json-codec.js';

/** A decoded OIP inference request. */
export interface InferRequest {
  id?: string;
  inputs: Tensor[];
  /** Outputs asked for (all when absent), and which of them go back as binary. */
  outputs?: string[];
  binaryOutputs: Set<string> | 'all' | 'none';
  /** MQTT 3.1.1 clients: where to answer, and their own deadline. */
  replyTo?: string;
  timeoutMs?: number;
}

/**
 * Parse an OIP request: `header` is its JSON, `binary` the buffers of the tensors that carry
 * `parameters.binary_data_size` (empty when the request is all JSON).
 */
export function parseInferRequest(header: Buffer, binary: Buffer, envelope: { id?: string | number; replyTo?: string } = {}): InferRequest {
  let body: unknown;
  try {
    body = JSON.parse(header.toString('utf8'));
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_BAD_JSON', `request is not valid JSON (${(err as Error).message})`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new EdgeloopError('EDGELOOP_BAD_JSON', 'request must be a JSON object {"inputs":[...]}');
  const o = body as Record<string, unknown>;
  if (typeof o.id === 'string' || typeof o.id === 'number') envelope.id = o.id;
  if (o.id !== undefined && typeof o.id !== 'string') throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'id' must be a string (OIP v2)`);
  if (o.replyTo !== undefined) {
    if (typeof o.replyTo !== 'string' || !o.replyTo || /[+#\0]/.test(o.replyTo)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'replyTo' must be a topic name without wildcards`);
    envelope.replyTo = o.replyTo;
  }
  // Empty only makes sense for a model that takes no inputs; the runner checks the names.
  if (!Array.isArray(o.inputs)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'inputs' must be an array of tensors`);
  let offset = 0;
  const inputs = o.inputs.map((raw, i) => {
    const where = `inputs[${i}]`;
    const size = (raw as { parameters?: { binary_data_size?: unknown } })?.parameters?.binary_data_size;
    if (size === undefined) return decodeJsonTensor(raw, where);
    const h = tensorHeader(raw, where);
    if (!Number.isInteger(size) || (size as number) < 0 || offset + (size as number) > binary.length) {
      throw new EdgeloopError('EDGELOOP_BAD_HEADER', `'${where}.parameters.binary_data_size' ${JSON.stringify(size)} does not fit the ${binary.length - offset} binary bytes left`);
    }
    const t = tensorFromBytes(h.name, h.dtype, h.shape, binary.subarray(offset, offset + (size as number)), where);
    offset += size as number;
    return t;
  });
  if (offset !== binary.length) throw new EdgeloopError('EDGELOOP_BAD_HEADER', `${binary.length - offset} binary bytes after the last tensor`);
  const names = new Set<string>();
  for (const t of inputs) {
    if (names.has(t.name)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `input '${t.name}' is given twice`);
    names.add(t.name);
  }
  let outputs: string[] | undefined;
  const binaryOutputs = new Set<string>();
  if (o.outputs !== undefined) {
    if (!Array.isArray(o.outputs)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'outputs' must be an array of {"name"}`);
    outputs = o.outputs.map((r, i) => {
      const name = (r as { name?: unknown })?.name;
      if (typeof name !== 'string') throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'outputs[${i}].name' must be a string`);
      if ((r as { parameters?: { binary_data?: unknown } }).parameters?.binary_data === true) binaryOutputs.add(name);
      return name;
    });
  }
  const params = o.parameters as { binary_data_output?: unknown } | undefined;
  const timeoutMs = typeof o.timeoutMs === 'number' && o.timeoutMs > 0 ? o.timeoutMs : undefined;
  return {
    id: typeof o.id === 'string' ? o.id : undefined,
    inputs,
    outputs,
    binaryOutputs: params?.binary_data_output === true ? 'all' : binaryOutputs.size ? binaryOutputs : 'none',
    replyTo: envelope.replyTo,
    timeoutMs,
  };
}

/** A result tensor, ready to encode. */
export interface OutputTensor {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  data: Tensor['data'];
}

/** The reply: its JSON text and the buffers of binary outputs (in header order). */
export function encodeInferResponse(meta: { model: string; version: string; id?: string; predictionIds?: string[] }, outputs: readonly OutputTensor[], binary: InferRequest['binaryOutputs']): { header: string; buffers: Buffer[] } {
  const buffers: Buffer[] = [];
  const json: JsonTensor[] = outputs.map((t) => {
    const asBinary = binary === 'all' || (binary !== 'none' && binary.has(t.name));
    const base = { name: t.name, datatype: DTYPE_TO_OIP[t.dtype], shape: [...t.shape] };
    if (!asBinary) return { ...base, data: toValues(t.dtype, t.data) };
    const bytes = tensorBytes(t.dtype, t.data);
    buffers.push(bytes);
    return { ...base, parameters: { binary_data_size: bytes.length } };
  });
  const reply: Record<string, unknown> = { model_name: meta.model, model_version: meta.version };
  if (meta.id !== undefined) reply.id = meta.id;
  // Feedback names a prediction by its id (one per row): OIP's free-form response parameters.
  if (meta.predictionIds) reply.parameters = { prediction_ids: meta.predictionIds };
  reply.outputs = json;
  return { header: JSON.stringify(reply), buffers };
}
