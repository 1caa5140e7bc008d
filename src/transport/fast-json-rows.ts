import type { Dtype } from '../bundle/index.js';
import { TYPED_ARRAYS, type TypedArray } from '../engine/index.js';

/**
 * The request nearly every IoT client sends, `{"inputs":[n, n, …]}` or `{"inputs":[[…],[…]]}`
 * (optionally with an `"id"` and a `"timeoutMs"`), read byte by byte straight into the model's typed array.
 * JSON.parse builds an object, an array and a boxed number per value first, then decodeRows
 * copies them: 5-6 µs of the daemon's CPU per 64-value row. No library does this (JSON
 * parsers build JS values), hence the hand-written scanner.
 *
 * It only ever accepts what the general decoder would accept with the same values: anything
 * else (other fields, escapes, a wrong count, a value outside the dtype, a duplicate key)
 * returns undefined and the general decoder reads the payload and says what is wrong.
 */
export interface FastRows {
  data: TypedArray;
  rows: number;
  id?: string | number;
  timeoutMs?: number;
}

const FAST_DTYPES = new Set<Dtype>(['float32', 'float64', 'int32', 'int8', 'uint8']);
const FLOAT32_MAX = 3.4028234663852886e38;
/** Powers of ten a double holds exactly: m / 10^e with m < 2^53 and e ≤ 22 is then correctly rounded (Clinger's fast path). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const COLON = 0x3a;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BRACE_OPEN = 0x7b;
const BRACE_CLOSE = 0x7d;
const BACKSLASH = 0x5c;

/** Rows of the fast path come from shared slabs: a 256-byte typed array of its own costs an off-heap allocation (0.5-1 µs) and external-memory accounting. A slab is freed with its last row. */
const SLAB_BYTES = 64 * 1024;
const slabs = new Map<Dtype, { buf: TypedArray; used: number }>();

function rowsArray(dtype: Dtype, n: number): TypedArray {
  const Ctor = TYPED_ARRAYS[dtype];
  if (n * Ctor.BYTES_PER_ELEMENT > SLAB_BYTES / 4) return new Ctor(n);
  let slab = slabs.get(dtype);
  if (!slab || slab.used + n > slab.buf.length) {
    slab = { buf: new Ctor(SLAB_BYTES / Ctor.BYTES_PER_ELEMENT), used: 0 };
    slabs.set(dtype, slab);
  }
  const out = slab.buf.subarray(slab.used, slab.used + n);
  slab.used += n;
  return out;
}

/** `minTimeoutMs`: a `timeoutMs` below it (or not finite) is left to the general decoder, which refuses it. */
export function fastJsonRows(b: Buffer, dtype: Dtype, rowSize: number, maxRows: number, minTimeoutMs: number): FastRows | undefined {
  if (!FAST_DTYPES.has(dtype) || rowSize <= 0) return undefined;
  let i = skip(b, 0);
  if (b[i] !== BRACE_OPEN) return undefined;
  i++;
  let out: FastRows | undefined;
  let id: string | number | undefined;
  let sawId = false;
  let timeoutMs: number | undefined;
  for (;;) {
    i = skip(b, i);
    const keyEnd = plainString(b, i);
    if (keyEnd < 0) return undefined;
    const key = b.toString('latin1', i + 1, keyEnd - 1);
    i = skip(b, keyEnd);
    if (b[i] !== COLON) return undefined;
    i = skip(b, i + 1);
    if (key === 'inputs' && !out) {
      out = readRows(b, i, dtype, rowSize, maxRows);
      if (!out) return undefined;
      i = end;
    } else if (key === 'id' && !sawId) {
      sawId = true;
      if (b[i] === QUOTE) {
        const idEnd = plainString(b, i);
        if (idEnd < 0) return undefined;
        id = b.toString('latin1', i + 1, idEnd - 1);
        i = idEnd;
      } else {
        id = readNumber(b, i);
        if (Number.isNaN(id)) return undefined;
        i = end;
      }
    } else if (key === 'timeoutMs' && timeoutMs === undefined) {
      timeoutMs = readNumber(b, i);
      if (!(timeoutMs >= minTimeoutMs && Number.isFinite(timeoutMs))) return undefined;
      i = end;
    } else return undefined;
    i = skip(b, i);
    if (b[i] === COMMA) {
      i++;
      continue;
    }
    if (b[i] !== BRACE_CLOSE || skip(b, i + 1) !== b.length || !out) return undefined;
    if (id !== undefined) out.id = id;
    if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
    return out;
  }
}

/** Where the last readRows or readNumber stopped (module state: no object per call). */
let end = 0;

function skip(b: Buffer, i: number): number {
  let c = b[i];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++i];
  return i;
}

/** The end (past the closing quote) of an ASCII string without escapes or control characters at i, or -1. */
function plainString(b: Buffer, i: number): number {
  if (b[i] !== QUOTE) return -1;
  const limit = Math.min(b.length, i + 258);
  for (let j = i + 1; j < limit; j++) {
    const c = b[j];
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH || c < 0x20 || c >= 0x80) return -1;
  }
  return -1;
}

/** One row of numbers, or an array of such rows, at i (its opening bracket); sets `end`. */
function readRows(b: Buffer, i: number, dtype: Dtype, rowSize: number, maxRows: number): FastRows | undefined {
  if (b[i] !== OPEN) return undefined;
  i = skip(b, i + 1);
  const integer = dtype !== 'float32' && dtype !== 'float64';
  const limit = dtype === 'float32' ? FLOAT32_MAX : Number.MAX_VALUE;
  if (b[i] !== OPEN) {
    const data = rowsArray(dtype, rowSize);
    return readValues(b, i, data, 0, rowSize, integer, limit) ? { data, rows: 1 } : undefined;
  }
  const rows = countRows(b, i, maxRows);
  if (rows === 0) return undefined;
  const data = rowsArray(dtype, rows * rowSize);
  for (let r = 0; r < rows; r++) {
    if (r > 0) {
      i = skip(b, end);
      if (b[i] !== COMMA) return undefined;
      i = skip(b, i + 1);
    }
    if (b[i] !== OPEN || !readValues(b, skip(b, i + 1), data, r * rowSize, rowSize, integer, limit)) return undefined;
  }
  i = skip(b, end);
  if (b[i] !== CLOSE) return undefined;
  end = i + 1;
  return { data, rows };
}

/** Rows of `[[…],[…]]` from i by their opening brackets; 0 when nested deeper or over the limit. */
function countRows(b: Buffer, i: number, maxRows: number): number {
  let rows = 0;
  let depth = 1;
  for (let j = i; j < b.length; j++) {
    const c = b[j];
    if (c === OPEN) {
      if (++depth > 2 || ++rows > maxRows) return 0;
    } else if (c === CLOSE && --depth === 0) return rows;
  }
  return 0;
}

/**
 * `count` numbers from i and the closing bracket into data[offset…]; sets `end`. The common
 * number (up to 15 digits, no exponent) is read inline: a call per value costs 3x here.
 */
function readValues(b: Buffer, i: number, data: TypedArray, offset: number, count: number, integer: boolean, limit: number): boolean {
  const f = data as Float32Array;
  for (let k = 0; k < count; k++) {
    let c = b[i];
    if (k > 0) {
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++i];
      if (c !== COMMA) return false;
      c = b[++i];
    }
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++i];
    const start = i;
    const negative = c === MINUS;
    if (negative) c = b[++i];
    let mantissa = 0;
    let digits = 0;
    if (c === 0x30) c = b[++i];
    else if (c >= 0x31 && c <= 0x39) {
      while (c >= 0x30 && c <= 0x39) {
        mantissa = mantissa * 10 + (c - 0x30);
        digits++;
        c = b[++i];
      }
    } else return false;
    let scale = 0;
    if (c === DOT) {
      c = b[++i];
      if (!(c >= 0x30 && c <= 0x39)) return false;
      while (c >= 0x30 && c <= 0x39) {
        mantissa = mantissa * 10 + (c - 0x30);
        digits++;
        scale--;
        c = b[++i];
      }
    }
    let v: number;
    if ((c === 0x65 || c === 0x45) || digits > 15 || scale < -22) {
      v = readNumber(b, start);
      i = end;
    } else {
      v = scale < 0 ? mantissa / POW10[-scale] : mantissa;
      if (negative) v = -v;
    }
    // What the general decoder refuses (non-integers for integer inputs, values the dtype cannot hold) it also explains.
    if (integer ? !Number.isInteger(v) : !(Math.abs(v) <= limit)) return false;
    f[offset + k] = v;
  }
  i = skip(b, i);
  if (b[i] !== CLOSE) return false;
  end = i + 1;
  return true;
}

/**
 * A JSON number at i, exactly as JSON.parse reads it (NaN when there is none); sets `end`.
 * Only the grammar is checked here and V8 converts the text: this path takes what the inline
 * reader in readValues leaves (exponents, long mantissas) and ids, all rare.
 */
function readNumber(b: Buffer, i: number): number {
  const start = i;
  if (b[i] === MINUS) i++;
  const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
  if (b[i] === 0x30) i++;
  else if (b[i] >= 0x31 && b[i] <= 0x39) while (isDigit(b[i])) i++;
  else return NaN;
  if (b[i] === DOT) {
    if (!isDigit(b[++i])) return NaN;
    while (isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === MINUS) i++;
    if (!isDigit(b[i])) return NaN;
    while (isDigit(b[i])) i++;
  }
  end = i;
  return Number(b.toString('latin1', start, i));
}
