import type { Dtype } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { TYPED_ARRAYS, type TypedArray } from '../engine/index.js';
import { fastJsonRows } from './fast-json-rows.js';
import { replyTopicProblem } from './topics.js';

/** Shortest request deadline taken (ms): below it a request could only time out. A deadline shorter than the daemon's is the client's choice and its timeouts never count against the model. */
export const MIN_TIMEOUT_MS = 1;

/** What the codec needs to know of a model input. */
export interface InputShape {
  name: string;
  dtype: Dtype;
  rowSize: number;
}

export interface DecodeLimits {
  maxPayloadBytes: number;
  maxRowsPerRequest: number;
}

/** Transport-level metadata of a message (MQTT 5 properties when the client sent them). */
export interface MessageMeta {
  contentType?: string;
  userProperties?: Record<string, string | string[]>;
}

/** Where and how to answer, read from the payload (3.1.1 clients have no response topic). */
export interface Envelope {
  id?: string | number;
  replyTo?: string;
  timeoutMs?: number;
}

export type DecodeResult =
  | { ok: true; envelope: Envelope; feeds: Record<string, TypedArray>; rows: number }
  | { ok: false; envelope: Envelope; error: EdgeloopError };

/** Binary header for 3.1.1 clients: "ELT1", u32 LE header length, JSON header, raw tensor. */
export const BINARY_MAGIC = 'ELT1';
const TENSOR_CONTENT_TYPES = new Set(['application/octet-stream', 'application/x-edgeloop-tensor']);
const INTEGER_DTYPES = new Set<Dtype>(['int32', 'int64', 'uint8', 'int8']);

/**
 * Decode a request payload into one typed array per model input. Never throws: bad input
 * comes back as an error together with whatever reply address could be read.
 */
export function decodeRequest(payload: Buffer, meta: MessageMeta, inputs: readonly InputShape[], limits: DecodeLimits): DecodeResult {
  const envelope: Envelope = {};
  try {
    if (payload.length > limits.maxPayloadBytes) {
      scanEnvelope(payload, envelope);
      throw new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `payload is ${payload.length} bytes, the limit is ${limits.maxPayloadBytes}`);
    }
    // "ELT1", compared byte by byte: no string per request.
    if (payload.length >= 8 && payload[0] === 0x45 && payload[1] === 0x4c && payload[2] === 0x54 && payload[3] === 0x31) {
      return { ok: true, envelope, ...decodeFramedBinary(payload, inputs, limits, envelope) };
    }
    const props = meta.userProperties;
    if ((meta.contentType && TENSOR_CONTENT_TYPES.has(meta.contentType)) || (props && props.dtype !== undefined)) {
      const header = { dtype: prop(props, 'dtype'), shape: parseShape(prop(props, 'shape')), input: prop(props, 'input') };
      return { ok: true, envelope, ...decodeTensor(payload, header, inputs, limits) };
    }
    return { ok: true, envelope, ...decodeJson(payload, inputs, limits, envelope) };
  } catch (err) {
    // Decoding touches nothing but the client's bytes: whatever fails here is the client's.
    const error = err instanceof EdgeloopError ? err : new EdgeloopError('EDGELOOP_BAD_INPUT', `payload cannot be decoded (${(err as Error).message})`, { cause: err });
    return { ok: false, envelope, error };
  }
}

/**
 * An oversized payload is not parsed, but a 3.1.1 client still needs its error at its own
 * address: look for "id" and "replyTo" in the first and last kilobyte only.
 */
function scanEnvelope(payload: Buffer, envelope: Envelope): void {
  const text = payload.toString('utf8', 0, 1024) + '\n' + payload.toString('utf8', Math.max(1024, payload.length - 1024));
  // No wildcards, NUL or control characters: the topic must be one the broker accepts.
  const replyTo = /"replyTo"\s*:\s*"([^"\\+#\u0000-\u001f]{1,1024})"/.exec(text);
  if (replyTo && replyTopicProblem(replyTo[1]) === undefined) envelope.replyTo = replyTo[1];
  const id = /"id"\s*:\s*(?:"([^"\\]{0,256})"|(-?\d{1,15}(?:\.\d+)?))/.exec(text);
  if (id) envelope.id = id[1] ?? Number(id[2]);
}

function prop(props: MessageMeta['userProperties'], key: string): string | undefined {
  const v = props?.[key];
  return Array.isArray(v) ? v[0] : v;
}

function parseShape(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const dims = text.replace(/[[\]\s]/g, '').split(',').map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new EdgeloopError('EDGELOOP_BAD_HEADER', `'shape' must be comma-separated non-negative integers, got "${text}"`);
  return dims;
}

function readEnvelope(obj: Record<string, unknown>, envelope: Envelope): void {
  if (obj.id !== undefined) {
    if (typeof obj.id !== 'string' && typeof obj.id !== 'number') throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'id' must be a string or a number`);
    envelope.id = obj.id;
  }
  if (obj.replyTo !== undefined) {
    const why = typeof obj.replyTo === 'string' ? replyTopicProblem(obj.replyTo) : 'it is not a string';
    if (why) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'replyTo' must be a topic name a broker accepts: ${why}`);
    envelope.replyTo = obj.replyTo as string;
  }
  if (obj.timeoutMs !== undefined) {
    if (typeof obj.timeoutMs !== 'number' || !(obj.timeoutMs >= MIN_TIMEOUT_MS) || !Number.isFinite(obj.timeoutMs)) {
      throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'timeoutMs' must be a number of milliseconds from ${MIN_TIMEOUT_MS}, got ${String(obj.timeoutMs).slice(0, 32)}`);
    }
    envelope.timeoutMs = obj.timeoutMs;
  }
}

function decodeFramedBinary(payload: Buffer, inputs: readonly InputShape[], limits: DecodeLimits, envelope: Envelope) {
  const headerLength = payload.readUInt32LE(4);
  if (headerLength > payload.length - 8) throw new EdgeloopError('EDGELOOP_BAD_HEADER', `header length ${headerLength} is past the end of the ${payload.length}-byte payload`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(payload.toString('utf8', 8, 8 + headerLength));
  } catch {
    throw new EdgeloopError('EDGELOOP_BAD_HEADER', 'binary header is not valid JSON');
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new EdgeloopError('EDGELOOP_BAD_HEADER', 'binary header must be a JSON object');
  readEnvelope(header, envelope);
  if (header.shape !== undefined && !(Array.isArray(header.shape) && header.shape.every((d) => Number.isInteger(d) && d >= 0))) {
    throw new EdgeloopError('EDGELOOP_BAD_HEADER', `'shape' must be an array of non-negative integers`);
  }
  return decodeTensor(
    payload.subarray(8 + headerLength),
    { dtype: typeof header.dtype === 'string' ? header.dtype : undefined, shape: header.shape as number[] | undefined, input: typeof header.input === 'string' ? header.input : undefined },
    inputs,
    limits,
  );
}

/** A raw little-endian tensor for one input (binary requests feed single-input models, or name the input). */
function decodeTensor(data: Buffer, header: { dtype?: string; shape?: number[]; input?: string }, inputs: readonly InputShape[], limits: DecodeLimits) {
  if (!header.dtype) throw new EdgeloopError('EDGELOOP_BAD_HEADER', `binary tensor needs a 'dtype'`);
  const input = header.input ? inputs.find((i) => i.name === header.input) : inputs[0];
  if (!input) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'input' ${header.input} is not an input of this model (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  if (inputs.length > 1) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `binary payloads feed single-input models; this model has ${inputs.length} inputs, send JSON`);
  if (header.dtype !== input.dtype) throw new EdgeloopError('EDGELOOP_BAD_DTYPE', `'dtype' must be ${input.dtype} for input '${input.name}', got ${header.dtype}`);
  const Ctor = TYPED_ARRAYS[input.dtype];
  if (data.length % Ctor.BYTES_PER_ELEMENT !== 0) {
    throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `tensor data is ${data.length} bytes, not a whole number of ${input.dtype} values`);
  }
  const count = data.length / Ctor.BYTES_PER_ELEMENT;
  if (count === 0) throw new EdgeloopError('EDGELOOP_EMPTY_INPUT', 'tensor has no values');
  if (count % input.rowSize !== 0) {
    throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'${input.name}' must have ${input.rowSize} values per row, got ${count} values (not a whole number of rows)`);
  }
  const rows = count / input.rowSize;
  if (header.shape) {
    const product = header.shape.reduce((a, b) => a * b, 1);
    const perRow = header.shape.slice(1).reduce((a, b) => a * b, 1);
    if (product !== count || perRow !== input.rowSize) {
      throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'shape' [${header.shape.join(',')}] does not match ${count} values of ${input.rowSize} per row for '${input.name}'`);
    }
  }
  if (rows > limits.maxRowsPerRequest) throw new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `${rows} rows, the limit is ${limits.maxRowsPerRequest} per request`);
  // Copy: the MQTT buffer may be unaligned for the typed array and is not ours to keep.
  const out = new Ctor(count);
  new Uint8Array(out.buffer).set(data);
  if (input.dtype === 'float32' || input.dtype === 'float64') {
    const f = out as Float32Array;
    for (let i = 0; i < f.length; i++) {
      if (!Number.isFinite(f[i])) throw new EdgeloopError('EDGELOOP_NON_FINITE', `value ${i} of '${input.name}' is ${f[i]}`);
    }
  }
  return { feeds: { [input.name]: out }, rows };
}

function decodeJson(payload: Buffer, inputs: readonly InputShape[], limits: DecodeLimits, envelope: Envelope) {
  if (inputs.length === 1) {
    const input = inputs[0];
    const fast = fastJsonRows(payload, input.dtype, input.rowSize, limits.maxRowsPerRequest, MIN_TIMEOUT_MS);
    if (fast) {
      if (fast.id !== undefined) envelope.id = fast.id;
      if (fast.timeoutMs !== undefined) envelope.timeoutMs = fast.timeoutMs;
      return { feeds: { [input.name]: fast.data }, rows: fast.rows };
    }
  }
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    // Broken JSON may still name its reply address (a 3.1.1 client has no other): answer there.
    scanEnvelope(payload, envelope);
    throw new EdgeloopError('EDGELOOP_BAD_JSON', `payload is not valid JSON (${(err as Error).message})`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new EdgeloopError('EDGELOOP_BAD_JSON', 'payload must be a JSON object such as {"inputs":[...]}');
  const obj = body as Record<string, unknown>;
  readEnvelope(obj, envelope);
  const raw = obj.inputs;
  if (raw === undefined) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'inputs' is required`);
  const feeds: Record<string, TypedArray> = {};
  let rows = -1;
  if (Array.isArray(raw)) {
    if (inputs.length > 1) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'inputs' must be an object keyed by input name (${inputs.map((i) => i.name).join(', ')})`);
    const decoded = decodeRows(raw, inputs[0], 'inputs', limits);
    feeds[inputs[0].name] = decoded.data;
    rows = decoded.rows;
  } else if (raw && typeof raw === 'object') {
    const named = raw as Record<string, unknown>;
    for (const key of Object.keys(named)) {
      if (!inputs.some((i) => i.name === key)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'inputs.${key}' is not an input of this model (inputs: ${inputs.map((i) => i.name).join(', ')})`);
    }
    for (const input of inputs) {
      const value = named[input.name];
      if (!Array.isArray(value)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'inputs.${input.name}' is required and must be an array`);
      const decoded = decodeRows(value, input, `inputs.${input.name}`, limits);
      if (rows !== -1 && decoded.rows !== rows) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'inputs.${input.name}' has ${decoded.rows} rows, other inputs have ${rows}`);
      feeds[input.name] = decoded.data;
      rows = decoded.rows;
    }
  } else {
    throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'inputs' must be an array of numbers, an array of rows, or an object keyed by input name`);
  }
  return { feeds, rows };
}

/** Deepest nesting of a row's arrays: far more than any tensor rank, far less than a stack. */
export const MAX_NESTING = 32;

/**
 * Flatten a nested row without recursion (client data must not choose our stack depth:
 * `flat(Infinity)` overflowed on 100,000 levels). Keeps at most `limit` + 1 values: beyond
 * that only counts, so the error can say how many arrived.
 */
function flattenRow(row: unknown[], limit: number, where: string): unknown[] {
  const out: unknown[] = [];
  let count = 0;
  const arrays: unknown[][] = [row];
  const index: number[] = [0];
  while (arrays.length > 0) {
    const top = arrays.length - 1;
    const a = arrays[top];
    if (index[top] >= a.length) {
      arrays.pop();
      index.pop();
      continue;
    }
    const v = a[index[top]++];
    if (Array.isArray(v)) {
      if (arrays.length >= MAX_NESTING) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `${where} is nested more than ${MAX_NESTING} levels deep`);
      arrays.push(v);
      index.push(0);
    } else if (count++ <= limit) out.push(v);
  }
  // Too many values: a holey array of the right length is enough for the size error.
  return count === out.length ? out : new Array<unknown>(count);
}

/** One row (numbers) or many rows (arrays, each flattened) into one typed array. */
function decodeRows(raw: unknown[], input: InputShape, field: string, limits: DecodeLimits): { data: TypedArray; rows: number } {
  if (raw.length === 0) throw new EdgeloopError('EDGELOOP_EMPTY_INPUT', `'${field}' has no rows`);
  const single = !Array.isArray(raw[0]);
  const rowList = single ? [raw] : raw;
  if (rowList.length > limits.maxRowsPerRequest) {
    throw new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `'${field}' has ${rowList.length} rows, the limit is ${limits.maxRowsPerRequest} per request`);
  }
  const data = new TYPED_ARRAYS[input.dtype](rowList.length * input.rowSize);
  const integer = INTEGER_DTYPES.has(input.dtype);
  const big = input.dtype === 'int64';
  let offset = 0;
  for (let r = 0; r < rowList.length; r++) {
    const row = rowList[r];
    if (!Array.isArray(row)) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'${field}[${r}]' must be an array of ${input.rowSize} numbers`);
    const flat = row.length > 0 && Array.isArray(row[0]) ? flattenRow(row, input.rowSize, single ? `'${field}'` : `'${field}[${r}]'`) : row;
    if (flat.length !== input.rowSize) {
      const where = single ? `'${field}'` : `'${field}[${r}]'`;
      if (flat.length === 0) throw new EdgeloopError('EDGELOOP_EMPTY_INPUT', `${where} is empty`);
      throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `${where} must have ${input.rowSize} values per row, got ${flat.length}`);
    }
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (typeof v !== 'number') {
        const where = single ? `${field}[${i}]` : `${field}[${r}][${i}]`;
        if (v === null) throw new EdgeloopError('EDGELOOP_NON_FINITE', `'${where}' is null`);
        throw new EdgeloopError('EDGELOOP_BAD_DTYPE', `'${where}' must be a number, got ${Array.isArray(v) ? 'array' : typeof v}`);
      }
      // 1e39 is finite for JSON but Infinity once stored as float32.
      if (!Number.isFinite(v) || (input.dtype === 'float32' && Math.abs(v) > 3.4028234663852886e38)) {
        throw new EdgeloopError('EDGELOOP_NON_FINITE', `'${single ? `${field}[${i}]` : `${field}[${r}][${i}]`}' is ${v}, outside the ${input.dtype} range`);
      }
      if (integer && !Number.isInteger(v)) {
        throw new EdgeloopError('EDGELOOP_BAD_DTYPE', `'${single ? `${field}[${i}]` : `${field}[${r}][${i}]`}' must be an integer for ${input.dtype} input '${input.name}', got ${v}`);
      }
      if (big) (data as BigInt64Array)[offset++] = BigInt(v);
      else (data as Float32Array)[offset++] = v;
    }
  }
  return { data, rows: rowList.length };
}
