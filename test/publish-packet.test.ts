import { createRequire } from 'node:module';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MAX_DIRECT_PACKET, publishPacketQos0 } from '../src/transport/publish-packet.js';

// mqtt-packet's own parser: its module's `parser` is replaced by the daemon's PUBLISH parser in a
// process that has loaded src/util/mqtt.ts (test files share modules), and this checks our encoder
// against the reference, not against our own decoder.
const mqttPacketParser = createRequire(import.meta.url)('mqtt-packet/parser.js') as Pick<typeof mqttPacket, 'parser'>;

/** Parse bytes with mqtt-packet, the parser aedes uses (and mqtt.js, for all but PUBLISH). */
function parse(buf: Buffer, protocolVersion: 4 | 5): mqttPacket.IPublishPacket[] {
  const parser = mqttPacketParser.parser({ protocolVersion });
  const out: mqttPacket.IPublishPacket[] = [];
  parser.on('packet', (p) => out.push(p as mqttPacket.IPublishPacket));
  parser.on('error', (err) => {
    throw err;
  });
  parser.parse(buf);
  return out;
}

describe('QoS 0 PUBLISH packets written directly', () => {
  it('parse back to the same topic, payload and properties, and match mqtt-packet byte for byte', () => {
    const corr = Buffer.from([0, 1, 2, 250, 255]);
    const cases: [string, string | Buffer][] = [
      ['r/1', '{"a":1}'],
      ['replies/ünïcödé/トピック', 'payload ✓ with ünïcode'],
      ['t', ''],
      ['x/'.repeat(100), 'y'.repeat(200)], // a two-byte remaining length
      ['big', 'z'.repeat(20_000)], // three bytes
      ['bin', Buffer.from([0, 255, 1, 254])],
    ];
    for (const [topic, payload] of cases) {
      for (const v of [4, 5] as const) {
        for (const correlationData of [undefined, corr]) {
          const bytes = publishPacketQos0(topic, payload, v, correlationData, 'application/json')!;
          const [p] = parse(bytes, v);
          expect(p.cmd).toBe('publish');
          expect(p.qos).toBe(0);
          expect(p.retain).toBe(false);
          expect(p.topic).toBe(topic);
          expect(Buffer.from(p.payload as Buffer).equals(Buffer.from(payload))).toBe(true);
          const expected: mqttPacket.IPublishPacket = { cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false };
          if (v === 5 && correlationData) {
            expect(p.properties?.correlationData?.equals(correlationData)).toBe(true);
            expect(p.properties?.contentType).toBe('application/json');
            expected.properties = { correlationData, contentType: 'application/json' };
          } else expect(p.properties?.correlationData).toBeUndefined();
          expect(bytes.equals(mqttPacket.generate(expected, { protocolVersion: v }))).toBe(true);
        }
      }
    }
  });

  it('leaves packets over the direct limit to mqtt.js', () => {
    expect(publishPacketQos0('t', 'x'.repeat(MAX_DIRECT_PACKET), 5)).toBeUndefined();
    expect(publishPacketQos0('t', 'x'.repeat(MAX_DIRECT_PACKET - 100), 5)).toBeDefined();
  });
});
