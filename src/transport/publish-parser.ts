import { EventEmitter } from 'node:events';

/**
 * An MQTT packet parser for mqtt.js clients that reads PUBLISH packets itself and hands every
 * other packet, and any PUBLISH it does not read in full, to mqtt-packet's own parser.
 *
 * Why: mqtt-packet's parser keeps its input in a `bl` BufferList and reads it through per-byte
 * views and debug calls: 5-6 µs per small PUBLISH on this machine, a tenth of what the daemon
 * spends on a request and the largest part of what it spends on a feedback message. This one
 * reads a PUBLISH from one Buffer in well under a microsecond. No maintained parser fits
 * mqtt.js's parser interface; the packet objects are the same shape as mqtt-packet's.
 *
 * Whole packets only go to the inner parser, so its state always starts at a packet boundary.
 * A PUBLISH with a user property, a subscription identifier, a repeated or unknown property or
 * any length that does not add up is read by mqtt-packet, which says what is wrong with it.
 */

/** mqtt-packet's module, as far as this file uses it. */
export interface MqttPacketModule {
  parser(opt?: ParserSettings): InnerParser;
}
interface ParserSettings {
  protocolVersion?: number;
}
interface InnerParser extends EventEmitter {
  settings: ParserSettings;
  parse(buf: Buffer): number;
}

interface PublishPacket {
  cmd: 'publish';
  retain: boolean;
  qos: number;
  dup: boolean;
  length: number;
  topic: string;
  payload: Buffer;
  messageId?: number;
  properties?: Record<string, unknown>;
}

const PUBLISH = 3;
// MQTT 5 property identifiers a PUBLISH usually carries, read here; any other goes to mqtt-packet.
const PAYLOAD_FORMAT_INDICATOR = 0x01;
const MESSAGE_EXPIRY_INTERVAL = 0x02;
const CONTENT_TYPE = 0x03;
const RESPONSE_TOPIC = 0x08;
const CORRELATION_DATA = 0x09;
const TOPIC_ALIAS = 0x23;

export class PublishParser extends EventEmitter {
  private readonly inner: InnerParser;
  /** Bytes of an incomplete packet, kept as they came until the packet is whole. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the incomplete packet needs in all (0: its header is not complete yet). */
  private needed = 0;
  /** The inner parser reported an error during this parse() call. */
  private failed = false;

  constructor(packets: MqttPacketModule, settings: ParserSettings) {
    super();
    this.inner = packets.parser(settings);
    this.inner.on('packet', (p) => this.emit('packet', p));
    this.inner.on('error', (e) => {
      this.failed = true;
      this.emit('error', e);
    });
  }

  /** The options it was made with (mqtt-packet's parsers have them; the protocol version is read from them). */
  get settings(): ParserSettings {
    return this.inner.settings;
  }

  /** mqtt-packet's contract: feed bytes, 'packet' is emitted for each whole packet; returns the bytes held back. */
  parse(chunk: Buffer): number {
    this.failed = false;
    let data = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.needed > 0 && this.pendingBytes < this.needed) return this.pendingBytes;
      data = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.needed = 0;
    let at = 0;
    while (at < data.length) {
      const header = remainingLength(data, at + 1);
      if (header === undefined) break; // the length is still coming
      if (header.value < 0) {
        // Not a length (a fifth continuation byte): mqtt-packet reports it; the connection ends.
        this.inner.parse(data.subarray(at));
        return 0;
      }
      const end = header.next + header.value;
      if (end > data.length) {
        this.needed = end - at;
        break;
      }
      const first = data[at];
      const packet = first >> 4 === PUBLISH ? this.readPublish(data, first, header.next, end, header.value) : undefined;
      if (packet) this.emit('packet', packet);
      else this.inner.parse(data.subarray(at, end));
      at = end;
      if (this.failed) {
        // As mqtt-packet does: after an error, the rest of this read is dropped (mqtt.js reports
        // the error; nothing after it in the same read is handled).
        this.pending = [];
        this.pendingBytes = 0;
        this.needed = 0;
        return 0;
      }
    }
    if (at < data.length) {
      // A copy: a view would keep the whole socket read alive for the few bytes of the next packet.
      const rest = Buffer.from(data.subarray(at));
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    return this.pendingBytes;
  }

  /** The PUBLISH in data[start, end), or undefined to leave it to mqtt-packet. */
  private readPublish(data: Buffer, first: number, start: number, end: number, length: number): PublishPacket | undefined {
    const qos = (first >> 1) & 3;
    if (qos === 3) return undefined;
    let p = start;
    if (p + 2 > end) return undefined;
    const topicLength = data.readUInt16BE(p);
    p += 2;
    if (p + topicLength > end) return undefined;
    const topic = data.toString('utf8', p, p + topicLength);
    p += topicLength;
    const packet: PublishPacket = { cmd: 'publish', retain: (first & 1) !== 0, qos, dup: (first & 8) !== 0, length, topic, payload: EMPTY };
    if (qos > 0) {
      if (p + 2 > end) return undefined;
      packet.messageId = data.readUInt16BE(p);
      p += 2;
    }
    // The inner parser learns the protocol version from the client's options.
    if (this.inner.settings.protocolVersion === 5) {
      const props = remainingLength(data, p);
      if (!props || props.value < 0) return undefined;
      p = props.next;
      const propsEnd = p + props.value;
      if (propsEnd > end) return undefined;
      let properties: Record<string, unknown> | undefined;
      while (p < propsEnd) {
        const id = data[p++];
        let name: string;
        let value: unknown;
        if (id === PAYLOAD_FORMAT_INDICATOR) {
          if (p + 1 > propsEnd) return undefined;
          name = 'payloadFormatIndicator';
          value = data[p++] !== 0;
        } else if (id === MESSAGE_EXPIRY_INTERVAL) {
          if (p + 4 > propsEnd) return undefined;
          name = 'messageExpiryInterval';
          value = data.readUInt32BE(p);
          p += 4;
        } else if (id === TOPIC_ALIAS) {
          if (p + 2 > propsEnd) return undefined;
          name = 'topicAlias';
          value = data.readUInt16BE(p);
          p += 2;
        } else if (id === CONTENT_TYPE || id === RESPONSE_TOPIC || id === CORRELATION_DATA) {
          if (p + 2 > propsEnd) return undefined;
          const n = data.readUInt16BE(p);
          p += 2;
          if (p + n > propsEnd) return undefined;
          name = id === CONTENT_TYPE ? 'contentType' : id === RESPONSE_TOPIC ? 'responseTopic' : 'correlationData';
          value = id === CORRELATION_DATA ? data.subarray(p, p + n) : data.toString('utf8', p, p + n);
          p += n;
        } else return undefined;
        properties ??= {};
        if (name in properties) return undefined; // repeated: mqtt-packet makes a list of it
        properties[name] = value;
      }
      if (properties) packet.properties = properties;
    }
    packet.payload = data.subarray(p, end);
    return packet;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * An MQTT variable byte integer at data[at]: its value and the index after it; undefined when
 * its bytes have not all arrived; value -1 when it is longer than four bytes (malformed).
 */
function remainingLength(data: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    if (at + i >= data.length) return undefined;
    const byte = data[at + i];
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, next: at + i + 1 };
    multiplier *= 128;
  }
  return { value: -1, next: at + 4 };
}

/**
 * Make mqtt.js's clients use {@link PublishParser}: mqtt.js asks mqtt-packet's `parser(options)`
 * for a parser on every connect. Called with no options (aedes, the embedded broker, parsing
 * its clients' packets) it stays mqtt-packet's own.
 */
export function installPublishParser(packets: MqttPacketModule & { edgeloopPublishParser?: boolean }): void {
  if (packets.edgeloopPublishParser) return;
  const original = packets.parser.bind(packets);
  packets.parser = (opt?: ParserSettings) => (opt && opt.protocolVersion !== undefined ? (new PublishParser({ parser: original }, opt) as unknown as InnerParser) : original(opt));
  packets.edgeloopPublishParser = true;
}
