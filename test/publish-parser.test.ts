import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { PublishParser, type MqttPacketModule } from '../src/transport/publish-parser.js';

// mqtt-packet's own parser, not the daemon's patched entry point (installPublishParser replaces
// mqtt-packet's `parser` in every process that loads the daemon): the reference to match.
const require = createRequire(import.meta.url);
const mqttPacket = require('mqtt-packet') as { generate(p: object, o: object): Buffer };
const original = require('mqtt-packet/parser.js') as MqttPacketModule;

/** A deterministic pseudo-random sequence (the cases must be the same on every run). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Event = ['packet', unknown] | ['error', string];

/** Feed `bytes` in the given chunk sizes; the events up to and including the first error. */
function events(make: () => EventEmitter & { parse(b: Buffer): number }, bytes: Buffer, chunks: number[]): Event[] {
  const parser = make();
  const out: Event[] = [];
  let failed = false;
  parser.on('packet', (p: Record<string, unknown>) => !failed && out.push(['packet', normalise(p)]));
  parser.on('error', (e: Error) => {
    if (!failed) out.push(['error', e.message]);
    failed = true;
  });
  let at = 0;
  for (const n of chunks) {
    if (at >= bytes.length || failed) break;
    parser.parse(bytes.subarray(at, at + n));
    at += n;
  }
  if (at < bytes.length && !failed) parser.parse(bytes.subarray(at));
  return out;
}

/** Buffers as hex: views and copies of the same bytes compare equal. */
function normalise(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return `hex:${v.toString('hex')}`;
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)]));
  return v;
}

function packets(rand: () => number, protocolVersion: 4 | 5, count: number, large = true): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const kind = rand();
    if (kind < 0.1) {
      out.push(mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion }));
      continue;
    }
    if (kind < 0.15) {
      out.push(mqttPacket.generate({ cmd: 'puback', messageId: 1 + Math.floor(rand() * 65535) }, { protocolVersion }));
      continue;
    }
    const qos = Math.floor(rand() * 3);
    const size = rand() < 0.03 && large ? 70_000 + Math.floor(rand() * 130_000) : Math.floor(rand() * 600);
    const payload = Buffer.from(Array.from({ length: size }, (_, k) => (k * 31 + i) & 0xff));
    const properties: Record<string, unknown> = {};
    if (protocolVersion === 5) {
      if (rand() < 0.6) properties.responseTopic = `reply/${i}/ü`;
      if (rand() < 0.6) properties.correlationData = Buffer.from(String(i * 7919));
      if (rand() < 0.3) properties.contentType = 'application/json';
      if (rand() < 0.3) properties.messageExpiryInterval = Math.floor(rand() * 2 ** 32);
      if (rand() < 0.2) properties.payloadFormatIndicator = rand() < 0.5;
      if (rand() < 0.1) properties.topicAlias = 1 + Math.floor(rand() * 10);
      // Left to mqtt-packet: user properties (repeated names become lists) and subscription identifiers.
      if (rand() < 0.1) properties.userProperties = { a: 'b', c: ['d', 'e'] };
      if (rand() < 0.05) properties.subscriptionIdentifier = 1 + Math.floor(rand() * 300_000);
    }
    out.push(
      mqttPacket.generate(
        { cmd: 'publish', topic: rand() < 0.05 ? '' : `edgeloop/dev-${i}/infer/digits`, payload, qos, retain: rand() < 0.1, dup: qos > 0 && rand() < 0.1, messageId: qos > 0 ? 1 + Math.floor(rand() * 65535) : undefined, ...(Object.keys(properties).length ? { properties } : {}) },
        { protocolVersion },
      ),
    );
  }
  return Buffer.concat(out);
}

function chunking(rand: () => number, total: number): number[] {
  const sizes: number[] = [];
  for (let n = 0; n < total; ) {
    const r = rand();
    // Mostly socket-sized reads; some of a few bytes, which split headers and lengths.
    const size = r < 0.1 ? 1 + Math.floor(rand() * 4) : r < 0.6 ? 1 + Math.floor(rand() * 700) : 1 + Math.floor(rand() * 65_536);
    sizes.push(size);
    n += size;
  }
  return sizes;
}

describe('PublishParser (what mqtt.js clients parse with)', () => {
  for (const protocolVersion of [5, 4] as const) {
    it(`emits exactly mqtt-packet's packets for a stream of PUBLISH and other packets, however it is split (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`, () => {
      for (let seed = 1; seed <= 8; seed++) {
        const rand = random(seed * 97 + protocolVersion);
        const bytes = packets(rand, protocolVersion, 120);
        const chunks = chunking(rand, bytes.length);
        const expected = events(() => original.parser({ protocolVersion }), bytes, chunks);
        expect(expected.filter(([e]) => e === 'packet')).toHaveLength(120);
        expect(events(() => new PublishParser(original, { protocolVersion }), bytes, chunks)).toEqual(expected);
      }
    });
  }

  it('corrupted streams: the same packets up to the first error, and the same error', () => {
    let errors = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const rand = random(seed);
      const bytes = Buffer.from(packets(rand, 5, 6, false));
      // Flip a few bytes anywhere: lengths, flags, property identifiers, topics.
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) bytes[Math.floor(rand() * Math.min(bytes.length, 120))] = Math.floor(rand() * 256);
      const chunks = chunking(rand, bytes.length);
      const expected = events(() => original.parser({ protocolVersion: 5 }), bytes, chunks);
      errors += +expected.some(([e]) => e === 'error');
      expect(events(() => new PublishParser(original, { protocolVersion: 5 }), bytes, chunks), `seed ${seed}`).toEqual(expected);
    }
    expect(errors).toBeGreaterThan(40); // the corruptions did reach the error paths
  });
  it('after an error drops the rest of that read, as mqtt-packet does, and parses the next read', () => {
    const publish = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0 }, { protocolVersion: 5 });
    // A PUBREL with the wrong header flags (0x60 instead of 0x62): a protocol error.
    const bad = Buffer.concat([Buffer.from([0x60, 0x02, 0x00, 0x01]), publish]);
    for (const make of [() => original.parser({ protocolVersion: 5 }), () => new PublishParser(original, { protocolVersion: 5 })]) {
      const parser = make();
      const seen: string[] = [];
      parser.on('packet', (p: { cmd: string }) => seen.push(p.cmd));
      parser.on('error', () => seen.push('error'));
      parser.parse(bad);
      parser.parse(publish);
      expect(seen).toEqual(['error', 'publish']);
    }
  });
});
