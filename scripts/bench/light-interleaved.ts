/**
 * Light load with the same machine weather for every target: one MQTT 5 client, one request
 * outstanding, cycling through the targets' topics in blocks of `block` requests (as
 * light-ab.ts does). On a shared 2-core machine a daemon run followed by an echo run differs by
 * ±0.1 ms in p50 from the weather alone; interleaved, both see the same.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface LightResult {
  /** Round trips (ms) of each target, in target order. */
  latencies: number[][];
  /** Requests with no reply within `lostAfterMs`, per target. */
  lost: number[];
  /** Error replies, per target. */
  failed: number[];
}

export async function interleavedLight(o: { url: string; topics: string[]; perTarget: number; block?: number; warmup?: number; lostAfterMs?: number }): Promise<LightResult> {
  const block = o.block ?? 50;
  const warmup = o.warmup ?? 200;
  const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;
  const c = await mqtt.connectAsync(o.url, { protocolVersion: 5, clientId: `bench-light-${process.pid}`, reconnectPeriod: 0, log: () => undefined });
  (c.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
  const replyTopic = `bench/light/${process.pid}`;
  await c.subscribeAsync(replyTopic, { qos: 0 });
  const n = o.topics.length;
  const out: LightResult = { latencies: o.topics.map(() => []), lost: o.topics.map(() => 0), failed: o.topics.map(() => 0) };
  let waiting: { id: string; resolve: (payload: Buffer | undefined) => void } | undefined;
  c.on('message', (_t, payload, packet) => {
    if (waiting && packet.properties?.correlationData?.toString() === waiting.id) waiting.resolve(payload);
  });
  try {
    for (let i = 0; i < (o.perTarget + warmup) * n; i++) {
      const k = Math.floor(i / block) % n;
      const id = String(i);
      const t = performance.now();
      const payload = await new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), o.lostAfterMs ?? 6000);
        waiting = { id, resolve: (p) => (clearTimeout(timer), resolve(p)) };
        c.publish(o.topics[k], JSON.stringify({ inputs: rows[i % rows.length] }), { qos: 0, properties: { responseTopic: replyTopic, correlationData: Buffer.from(id) } });
      });
      if (i < warmup * n) continue;
      if (!payload) out.lost[k]++;
      else if (payload.includes('"error"')) out.failed[k]++;
      else out.latencies[k].push(performance.now() - t);
    }
  } finally {
    await c.endAsync();
  }
  return out;
}
