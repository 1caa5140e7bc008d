/**
 * ONNX's backend node tests as Debian's libonnx-testdata installs them: one folder per case
 * with model.onnx and test_data_set_0/{input,output}_N.pb (TensorProto). Tensor cases only.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { Dtype } from '../../src/bundle/index.js';
import { TYPED_ARRAYS, type TypedArray } from '../../src/engine/index.js';

const { onnx } = onnxProto;
export const TESTDATA_DIR = '/usr/share/libonnx-testdata/data/node';

const ELEM: Record<number, Dtype> = { 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64' };

export interface CaseTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: TypedArray | string[];
}
export interface OnnxCase {
  name: string;
  model: string;
  inputs: CaseTensor[];
  outputs: CaseTensor[];
}

export function testdataInstalled(): boolean {
  return existsSync(TESTDATA_DIR);
}

/** Every case folder name, sorted. */
export function caseNames(): string[] {
  return readdirSync(TESTDATA_DIR).filter((n) => existsSync(path.join(TESTDATA_DIR, n, 'model.onnx')) && existsSync(path.join(TESTDATA_DIR, n, 'test_data_set_0'))).sort();
}

function readTensor(file: string, fallbackName: string): CaseTensor | undefined {
  const t = onnx.TensorProto.decode(readFileSync(file));
  const dtype = ELEM[t.dataType];
  if (!dtype) return undefined;
  const shape = t.dims.map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (!(count <= 1_000_000)) return undefined; // kept small: the sample runs in seconds
  let data: TypedArray | string[];
  if (dtype === 'string') data = t.stringData.map((b: Uint8Array) => Buffer.from(b).toString('utf8'));
  else if (t.rawData && t.rawData.length) {
    const Ctor = TYPED_ARRAYS[dtype];
    data = new Ctor(count);
    new Uint8Array(data.buffer).set(t.rawData.subarray(0, count * Ctor.BYTES_PER_ELEMENT));
  } else {
    const Ctor = TYPED_ARRAYS[dtype];
    data = new Ctor(count);
    const src: unknown[] = dtype === 'float32' ? t.floatData : dtype === 'float64' ? t.doubleData : dtype === 'int64' ? t.int64Data : dtype === 'uint64' || dtype === 'uint32' ? t.uint64Data : t.int32Data;
    for (let i = 0; i < count; i++) {
      const v = src[i] as number | { toString(): string };
      (data as unknown as unknown[])[i] = dtype === 'int64' || dtype === 'uint64' ? BigInt(String(v)) : Number(v);
    }
  }
  return { name: t.name || fallbackName, dtype, shape, data };
}

/** A case's tensors, named after the model graph's inputs and outputs; undefined for non-tensor cases. */
export function loadCase(name: string): OnnxCase | undefined {
  const dir = path.join(TESTDATA_DIR, name);
  const model = path.join(dir, 'model.onnx');
  const graph = onnx.ModelProto.decode(readFileSync(model)).graph!;
  const initializers = new Set((graph.initializer ?? []).map((i) => i.name));
  const inputNames = (graph.input ?? []).map((i) => i.name!).filter((n) => !initializers.has(n));
  const outputNames = (graph.output ?? []).map((o) => o.name!);
  const set = path.join(dir, 'test_data_set_0');
  const files = readdirSync(set);
  const inputs: CaseTensor[] = [];
  const outputs: CaseTensor[] = [];
  for (let i = 0; files.includes(`input_${i}.pb`); i++) {
    const t = readTensor(path.join(set, `input_${i}.pb`), inputNames[i]);
    if (!t) return undefined;
    inputs.push({ ...t, name: inputNames[i] ?? t.name });
  }
  for (let i = 0; files.includes(`output_${i}.pb`); i++) {
    const t = readTensor(path.join(set, `output_${i}.pb`), outputNames[i]);
    if (!t) return undefined;
    outputs.push({ ...t, name: outputNames[i] ?? t.name });
  }
  if (inputs.length !== inputNames.length || outputs.length !== outputNames.length) return undefined;
  return { name, model, inputs, outputs };
}

/** ONNX's own backend-test tolerance (rtol 1e-3, atol 1e-7), loosened a little for float16; NaN equals NaN. */
export function sameValues(expected: CaseTensor, dtype: string, shape: readonly number[], values: readonly unknown[]): string | undefined {
  if (dtype !== expected.dtype) return `dtype ${dtype}, expected ${expected.dtype}`;
  if (shape.join(',') !== expected.shape.join(',')) return `shape [${shape.join(',')}], expected [${expected.shape.join(',')}]`;
  const exp = Array.from(expected.data as ArrayLike<unknown>);
  const atol = expected.dtype === 'float16' ? 1e-3 : 1e-5;
  for (let i = 0; i < exp.length; i++) {
    const e = exp[i];
    const g = values[i];
    if (typeof e === 'bigint') {
      if (BigInt(g as string | number) !== e) return `value ${i}: ${g}, expected ${e}`;
    } else if (typeof e === 'string') {
      if (g !== e) return `value ${i}: ${JSON.stringify(g)}, expected ${JSON.stringify(e)}`;
    } else if (expected.dtype === 'bool') {
      if (Boolean(g) !== (e !== 0)) return `value ${i}: ${g}, expected ${e !== 0}`;
    } else {
      const gv = typeof g === 'string' ? Number(g === 'Infinity' ? Infinity : g === '-Infinity' ? -Infinity : g === 'NaN' ? NaN : g) : (g as number);
      const ev = expected.dtype === 'float16' ? halfToNumber(e as number) : (e as number);
      if (Number.isNaN(ev) && Number.isNaN(gv)) continue;
      if (ev === gv) continue;
      if (!(Math.abs(gv - ev) <= atol + 1e-3 * Math.abs(ev))) return `value ${i}: ${gv}, expected ${ev}`;
    }
  }
  return undefined;
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
