import { BINARY_MAGIC } from '../../src/transport/index.js';

/** The documented 3.1.1 binary framing: "ELT1", u32 LE header length, JSON header, raw tensor. */
export function encodeBinaryRequest(data: Float32Array, header: Record<string, unknown>): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(h.length);
  return Buffer.concat([Buffer.from(BINARY_MAGIC, 'latin1'), len, h, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}
