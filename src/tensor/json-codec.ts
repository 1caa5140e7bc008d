/**
 * OIP v2 tensors as JSON, both ways. Values JSON cannot carry are strings, on input and output:
 * "NaN", "Infinity", "-Infinity" for FP16/FP32/FP64; INT64/UINT64 beyond ±2^53 as decimal
 * strings ("9007199254740993"), exact; BOOL as true/false (0/1 accepted); BYTES as strings.
 */
import type { Dtype } from '../bundle/index.js';
import { TYPED_ARRAYS, type TypedArray } from '../engine/index.js';
import { EdgeloopError } from '../errors.js';
import { DTYPE_TO_OIP, INT_RANGES, OIP_TO_DTYPE, fromHalf, toHalf } from './datatypes.js';

/** A tensor decoded from a request: ORT dtype, shape and data (string[] for BYTES). */
export interface Tensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: TypedArray | string[];
}

/** The JSON form of a tensor in an OIP request or reply. */
export interface JsonTensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, inf: Infinity, '-inf': -Infinity, nan: NaN };

/** Check a tensor object's name, datatype and shape; `where` names it in errors ('inputs[0]'). */
export function tensorHeader(raw: unknown, where: string): { name: string; dtype: Dtype; shape: number[]; count: number; parameters: Record<string, unknown> } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${where}' must be a tensor object {"name","shape","datatype","data"}`);
  const t = raw as Record<string, unknown>;
  if (typeof t.name !== 'string' || !t.name) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${where}.name' must be a non-empty string`);
  const dtype = typeof t.datatype === 'string' ? (OIP_TO_DTYPE as Record<string, Dtype>)[t.datatype] : undefined;
  if (!dtype) throw new EdgeloopError('EDGELOOP_BAD_DTYPE', `'${where}.datatype' must be one of ${Object.keys(OIP_TO_DTYPE).join(', ')}, got ${JSON.stringify(t.datatype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'${where}.shape' must be an array of non-negative integers`);
  const shape = t.shape as number[];
  const parameters = t.parameters && typeof t.parameters === 'object' ? (t.parameters as Record<string, unknown>) : {};
  return { name: t.name, dtype, shape, count: shape.reduce((a, b) => a * b, 1), parameters };
}

/** Decode one JSON tensor (data flat or nested, row-major) into its typed array. */
export function decodeJsonTensor(raw: unknown, where: string): Tensor {
  const h = tensorHeader(raw, where);
  const data = (raw as { data?: unknown }).data;
  if (!Array.isArray(data)) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `'${where}.data' must be an array`);
  const flat = data.length > 0 && Array.isArray(data[0]) ? (data.flat(Infinity) as unknown[]) : data;
  if (flat.length !== h.count) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'${where}' has shape [${h.shape.join(',')}] (${h.count} values) but ${flat.length} values in 'data'`);
  return { name: h.name, dtype: h.dtype, shape: h.shape, data: fromValues(flat, h.dtype, `${where}.data`) };
}

/** JS values (numbers, strings, booleans) into the dtype's array, each checked. */
export function fromValues(values: readonly unknown[], dtype: Dtype, where: string): TypedArray | string[] {
  const n = values.length;
  if (dtype === 'string') {
    return values.map((v, i) => {
      if (typeof v !== 'string') throw new EdgeloopError('EDGELOOP_BAD_DTYPE', `'${where}[${i}]' must be a string for BYTES`);
      return v;
    });
  }
  const out = new TYPED_ARRAYS[dtype](n);
  const bad = (i: number, why: string) => new EdgeloopError('EDGELOOP_BAD_DTYPE', `'${where}[${i}]' ${why} (${DTYPE_TO_OIP[dtype]})`);
  if (dtype === 'int64' || dtype === 'uint64') {
    const big = out as BigInt64Array | BigUint64Array;
    const [lo, hi] = dtype === 'int64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    for (let i = 0; i < n; i++) {
      const v = values[i];
      let b: bigint;
      if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
      else throw bad(i, `must be an integer (a decimal string beyond 2^53), got ${JSON.stringify(v)}`);
      if (b < lo || b > hi) throw bad(i, `is out of range`);
      big[i] = b;
    }
    return out;
  }
  const float = dtype === 'float32' || dtype === 'float64' || dtype === 'float16';
  const range = INT_RANGES[dtype];
  for (let i = 0; i < n; i++) {
    let v = values[i];
    if (dtype === 'bool') {
      if (v === true || v === 1) v = 1;
      else if (v === false || v === 0) v = 0;
      else throw bad(i, `must be true or false`);
    } else if (typeof v === 'string' && float && v in NON_FINITE) v = NON_FINITE[v];
    if (typeof v !== 'number') throw bad(i, `must be a number, got ${v === null ? 'null' : typeof v}`);
    if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) throw bad(i, `must be an integer in ${range[0]}..${range[1]}, got ${v}`);
    (out as Float64Array)[i] = dtype === 'float16' ? toHalf(v) : v;
  }
  return out;
}

/** A result tensor as JSON, with the documented encoding for what JSON cannot carry. */
export function encodeJsonTensor(name: string, dtype: Dtype, shape: readonly number[], data: TypedArray | string[]): JsonTensor {
  return { name, datatype: DTYPE_TO_OIP[dtype], shape: [...shape], data: toValues(dtype, data) };
}

export function toValues(dtype: Dtype, data: TypedArray | string[]): unknown[] {
  const n = data.length;
  const out = new Array<unknown>(n);
  if (dtype === 'string') return Array.from(data as string[]);
  if (dtype === 'int64' || dtype === 'uint64') {
    for (let i = 0; i < n; i++) {
      const b = (data as BigInt64Array)[i];
      out[i] = b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b.toString();
    }
    return out;
  }
  if (dtype === 'bool') {
    for (let i = 0; i < n; i++) out[i] = (data as Uint8Array)[i] !== 0;
    return out;
  }
  const half = dtype === 'float16';
  for (let i = 0; i < n; i++) {
    const v = half ? fromHalf((data as Uint16Array)[i]) : (data as Float64Array)[i];
    out[i] = Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  return out;
}
