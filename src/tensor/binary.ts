/**
 * Binary tensors (in the spirit of OIP's binary data extension): a JSON header that is an OIP
 * request or reply whose binary tensors carry `"parameters": {"binary_data_size": N}` instead
 * of `data`, followed by their raw little-endian buffers in header order. BYTES elements are
 * each a 4-byte little-endian length and the bytes. Over HTTP the header length is the
 * `Inference-Header-Content-Length` header (as KServe/Triton clients send it); over MQTT
 * (3.1.1 and 5) the payload is framed: "OIP1", u32 LE header length, header, buffers.
 */
import type { Dtype } from '../bundle/index.js';
import { TYPED_ARRAYS, type TypedArray } from '../engine/index.js';
import { EdgeloopError } from '../errors.js';
import type { Tensor } from './json-codec.js';

export const OIP_FRAME_MAGIC = 'OIP1';
export const HEADER_LENGTH_FIELD = 'inference-header-content-length';

/** The raw bytes of a tensor's data (little-endian, as the platform's typed arrays are here). */
export function tensorBytes(dtype: Dtype, data: TypedArray | string[]): Buffer {
  if (dtype === 'string') {
    const parts: Buffer[] = [];
    for (const s of data as string[]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const a = data as TypedArray;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A tensor from raw bytes; the byte length must be exactly what its shape and datatype take. */
export function tensorFromBytes(name: string, dtype: Dtype, shape: number[], bytes: Buffer, where: string): Tensor {
  const count = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'string') {
    const out: string[] = [];
    let o = 0;
    while (o < bytes.length) {
      if (o + 4 > bytes.length) break;
      const len = bytes.readUInt32LE(o);
      if (o + 4 + len > bytes.length) break;
      out.push(bytes.toString('utf8', o + 4, o + 4 + len));
      o += 4 + len;
    }
    if (o !== bytes.length || out.length !== count) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'${where}': BYTES data holds ${out.length} complete elements in ${bytes.length} bytes, shape [${shape.join(',')}] needs ${count}`);
    return { name, dtype, shape, data: out };
  }
  const Ctor = TYPED_ARRAYS[dtype];
  if (bytes.length !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'${where}' has ${bytes.length} bytes; shape [${shape.join(',')}] of ${dtype} takes ${count * Ctor.BYTES_PER_ELEMENT}`);
  }
  // Copied: the network buffer may be unaligned for the typed array and is not ours to keep.
  const data = new Ctor(count);
  new Uint8Array(data.buffer).set(bytes);
  return { name, dtype, shape, data };
}

/** Split a framed MQTT payload ("OIP1" + u32 LE length + header + buffers). */
export function unframe(payload: Buffer): { header: Buffer; binary: Buffer } {
  if (payload.length < 8) throw new EdgeloopError('EDGELOOP_BAD_HEADER', 'OIP1 frame is shorter than its 8-byte prefix');
  const length = payload.readUInt32LE(4);
  if (length > payload.length - 8) throw new EdgeloopError('EDGELOOP_BAD_HEADER', `OIP1 header length ${length} is past the end of the ${payload.length}-byte payload`);
  return { header: payload.subarray(8, 8 + length), binary: payload.subarray(8 + length) };
}

/** Frame a JSON header and buffers for MQTT. */
export function frame(header: string, buffers: readonly Buffer[]): Buffer {
  const h = Buffer.from(header, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.write(OIP_FRAME_MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(h.length, 4);
  return Buffer.concat([prefix, h, ...buffers]);
}

export function isFramed(payload: Buffer): boolean {
  return payload.length >= 8 && payload[0] === 0x4f && payload[1] === 0x49 && payload[2] === 0x50 && payload[3] === 0x31; // "OIP1"
}
