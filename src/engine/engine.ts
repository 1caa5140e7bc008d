import type { Dtype, TensorSpec } from '../bundle/index.js';

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array | BigUint64Array;

/** What a tensor's data is: a typed array, or strings for `string` (OIP BYTES). */
export type TensorData = TypedArray | string[];

/** A dense tensor as engines take and return it (a `string` tensor carries a string[] as its data: onnx engine only). */
export interface EngineTensor {
  dtype: Dtype;
  data: TypedArray;
  dims: readonly number[];
}

/** One loaded model, ready to run. Implementations: OnnxEngine, TfjsEngine. */
export interface Engine {
  readonly runtime: 'onnx' | 'tfjs';
  /** What actually runs it: an ONNX execution provider or a tfjs backend. */
  readonly backend: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /**
   * Run one batch. Every input named in `inputs` must be fed; all outputs are returned, or with
   * `firstOnly` at least the first (what a classifier or regression reply reads): an engine may
   * then skip computing and copying the others (an ONNX embedding output, for instance).
   */
  run(feeds: Readonly<Record<string, EngineTensor>>, opts?: { firstOnly?: boolean }): Promise<Record<string, EngineTensor>>;
  /** Free native memory; the engine must not be used afterwards. */
  dispose(): Promise<void>;
}

/** Options engines take from the device config. */
export interface EngineOptions {
  onnx: { executionProviders: readonly string[]; intraOpNumThreads: number; interOpNumThreads: number };
  tfjs: { backends: readonly string[] };
}

/**
 * The typed array of each dtype, as ONNX Runtime takes and returns it: float16 as its raw
 * 16-bit patterns (Uint16Array), bool as one byte per value. `string` has none: its data is a
 * string[] (Uint8Array here only so that buffer code paths never see undefined).
 */
export const TYPED_ARRAYS: Record<Dtype, { new (n: number): TypedArray; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  string: Uint8Array,
};
