/**
 * Investigation, not part of `npm run bench`: µs per PUBLISH packet for mqtt-packet's parser and
 * Edgeloop's (src/transport/publish-parser.ts), on a feedback message and a digits request
 * (MQTT 5, response topic + correlation data), 100 packets per chunk as a socket read brings them.
 *
 *   npx tsx scripts/bench/mqtt-parse.ts
 */
import { createRequire } from 'node:module';
import { PublishParser, type MqttPacketModule } from '../../src/transport/publish-parser.js';
import { fmt, table } from './report.js';

const require = createRequire(import.meta.url);
const mqttPacket = require('mqtt-packet') as { generate(p: object, o: object): Buffer };
const original = require('mqtt-packet/parser.js') as MqttPacketModule;
const settings = { protocolVersion: 5 };
const payloads: [string, string][] = [
  ['feedback by prediction id', JSON.stringify({ predictionId: 'k3f9a-12345', label: '3' })],
  ['digits request (64 inputs)', JSON.stringify({ inputs: Array.from({ length: 64 }, (_, i) => (i * 7) % 17) })],
];

function perPacket(parser: { on(e: 'packet', f: () => void): unknown; parse(b: Buffer): number }, chunk: Buffer, perChunk: number): number {
  let n = 0;
  parser.on('packet', () => n++);
  for (let i = 0; i < 300; i++) parser.parse(chunk);
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 500; i++) parser.parse(chunk);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1000 / (500 * perChunk));
  }
  if (n === 0) throw new Error('no packet parsed');
  return best;
}

const rows = payloads.map(([name, payload]) => {
  const one = mqttPacket.generate({ cmd: 'publish', topic: 'edgeloop/dev1/infer/digits', payload, qos: 0, properties: { responseTopic: 'client/1/replies', correlationData: Buffer.from('1234') } }, settings);
  const chunk = Buffer.concat(Array<Buffer>(100).fill(one));
  const a = perPacket(original.parser({ ...settings }), chunk, 100);
  const b = perPacket(new PublishParser(original, { ...settings }), chunk, 100);
  return [name, one.length, fmt(a, 2), fmt(b, 2), `${fmt(a / b, 1)}x`];
});
console.log(table(['packet', 'bytes', 'mqtt-packet, µs', 'PublishParser, µs', 'ratio'], rows));
