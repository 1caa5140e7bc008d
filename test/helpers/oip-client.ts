import { DTYPE_TO_OIP, frame, tensorBytes, tensorFromBytes, toValues, unframe, OIP_TO_DTYPE } from '../../src/tensor/index.js';
import type { CaseTensor } from './onnx-testdata.js';

/** A case's inputs as an OIP JSON request body. */
export function oipJson(inputs: readonly CaseTensor[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...extra, inputs: inputs.map((t) => ({ name: t.name, datatype: DTYPE_TO_OIP[t.dtype], shape: t.shape, data: toValues(t.dtype, t.data) })) };
}

/** The same inputs as an OIP1 frame (binary inputs, binary outputs asked for). */
export function oipFrame(inputs: readonly CaseTensor[], extra: Record<string, unknown> = {}): Buffer {
  const buffers = inputs.map((t) => tensorBytes(t.dtype, t.data));
  const header = { ...extra, parameters: { binary_data_output: true }, inputs: inputs.map((t, i) => ({ name: t.name, datatype: DTYPE_TO_OIP[t.dtype], shape: t.shape, parameters: { binary_data_size: buffers[i].length } })) };
  return frame(JSON.stringify(header), buffers);
}

export interface OipReply {
  model_name?: string;
  id?: string;
  outputs?: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
  error?: { code: string; message: string };
}

/** A reply payload (JSON, or an OIP1 frame with binary outputs) with every output as JSON values. */
export function readReply(payload: Buffer): OipReply {
  if (payload.subarray(0, 4).toString('latin1') !== 'OIP1') return JSON.parse(payload.toString());
  const { header, binary } = unframe(payload);
  const reply = JSON.parse(header.toString()) as OipReply & { outputs: { name: string; datatype: string; shape: number[]; data?: unknown[]; parameters?: { binary_data_size?: number } }[] };
  let offset = 0;
  for (const o of reply.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    const dtype = OIP_TO_DTYPE[o.datatype as keyof typeof OIP_TO_DTYPE];
    o.data = toValues(dtype, tensorFromBytes(o.name, dtype, o.shape, binary.subarray(offset, offset + size), o.name).data);
    offset += size;
  }
  return reply as OipReply;
}
