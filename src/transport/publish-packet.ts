/**
 * One QoS 0 PUBLISH packet in one buffer (MQTT 5 §3.3, 3.1.1 §3.3), for the replies the daemon
 * sends by the thousand. mqtt.js builds a packet object and writes it in six or more pieces
 * (mqtt-packet's writeToStream: header, length, topic, each property, payload), each a stream
 * write: together 8-10 µs of CPU per reply, more than the daemon's own work. Replies need
 * nothing of mqtt.js's state (no packet id, no store), so they are encoded here; anything else
 * (QoS 1, large payloads, a client not connected) goes through mqtt.js.
 */

/** Larger replies go through mqtt.js, which knows the broker's maximum packet size. */
export const MAX_DIRECT_PACKET = 64 * 1024;

const CORRELATION_DATA = 0x09;
const CONTENT_TYPE = 0x03;

/**
 * The bytes of a QoS 0 PUBLISH (no retain, no dup) of `payload` to `topic`; MQTT 5 with
 * correlation data also carries it and the content type. Undefined when it would exceed
 * MAX_DIRECT_PACKET.
 */
export function publishPacketQos0(topic: string, payload: string | Buffer, protocolVersion: number, correlationData?: Buffer, contentType?: string): Buffer | undefined {
  const topicBytes = Buffer.byteLength(topic, 'utf8');
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  const v5 = protocolVersion === 5;
  const withProps = v5 && correlationData !== undefined;
  const typeBytes = withProps && contentType !== undefined ? Buffer.byteLength(contentType, 'utf8') : 0;
  const propsLength = withProps ? 3 + correlationData.length + (contentType !== undefined ? 3 + typeBytes : 0) : 0;
  const remaining = 2 + topicBytes + (v5 ? varintSize(propsLength) + propsLength : 0) + payloadBytes;
  const total = 1 + varintSize(remaining) + remaining;
  if (total > MAX_DIRECT_PACKET) return undefined;
  const buf = Buffer.allocUnsafe(total);
  buf[0] = 0x30; // PUBLISH, QoS 0
  let at = writeVarint(buf, 1, remaining);
  buf.writeUInt16BE(topicBytes, at);
  at += 2;
  at += buf.write(topic, at, 'utf8');
  if (v5) {
    at = writeVarint(buf, at, propsLength);
    if (withProps) {
      buf[at++] = CORRELATION_DATA;
      buf.writeUInt16BE(correlationData.length, at);
      at += 2;
      at += correlationData.copy(buf, at);
      if (contentType !== undefined) {
        buf[at++] = CONTENT_TYPE;
        buf.writeUInt16BE(typeBytes, at);
        at += 2;
        at += buf.write(contentType, at, 'utf8');
      }
    }
  }
  if (typeof payload === 'string') buf.write(payload, at, 'utf8');
  else payload.copy(buf, at);
  return buf;
}

export function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** MQTT's variable byte integer (§1.5.5) at `at`; returns the offset after it. */
export function writeVarint(buf: Buffer, at: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[at++] = byte;
  } while (n > 0);
  return at;
}
