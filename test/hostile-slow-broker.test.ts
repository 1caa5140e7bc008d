import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxGraphBuilder } from '../src/training/onnx/onnx-writer.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const VALUES = 32_768; // one reply: ~260 kB of JSON numbers

/** A model without inputs whose one output is VALUES floats: every reply is large. */
function bigReplyModel(): Uint8Array {
  const g = new OnnxGraphBuilder('big');
  g.addNode('Identity', [g.addFloats('c', Float32Array.from({ length: VALUES }, (_, i) => (i % 1000) / 7))], ['out']);
  g.addOutput({ name: 'out', elemType: 'float32', shape: [VALUES] });
  return g.encode();
}

/**
 * A TCP proxy in front of the real broker that can stop reading what the daemon writes (a
 * broker too slow to take its replies) while still delivering requests to it.
 */
async function stallingProxy(port: number): Promise<{ url: string; stall(): void; resume(): void; close(): Promise<void> }> {
  const pairs: { daemon: net.Socket; broker: net.Socket }[] = [];
  const server = net.createServer((daemon) => {
    const broker = net.connect(port, '127.0.0.1');
    daemon.pipe(broker);
    broker.pipe(daemon);
    pairs.push({ daemon, broker });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stall: () => pairs.forEach((p) => (p.daemon.unpipe(p.broker), p.daemon.pause())),
    resume: () => pairs.forEach((p) => p.daemon.pipe(p.broker)),
    close: () => new Promise<void>((r) => (pairs.forEach((p) => (p.daemon.destroy(), p.broker.destroy())), server.close(() => r()))),
  };
}

describe('a broker too slow to take the replies', () => {
  let mosquitto: Mosquitto;
  let proxy: Awaited<ReturnType<typeof stallingProxy>>;
  let d: RunningDaemon;
  beforeAll(async () => {
    mosquitto = await startMosquitto();
    proxy = await stallingProxy(mosquitto.port);
    const models = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-big-'));
    writeFileSync(path.join(models, 'big.onnx'), bigReplyModel());
    d = await startDaemon({ broker: proxy.url, config: { modelsDir: models, broker: { protocolVersion: 4 }, drift: { enabled: false } } });
  });
  afterAll(async () => {
    await d?.stop();
    await proxy?.close();
    await mosquitto?.stop();
  });

  it('stops reading requests once its replies pile up (no listener per reply), then answers every one exactly once', async () => {
    const N = 300;
    const client = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4 });
    const replyTo = 'test/slow-broker/replies';
    const got = new Map<string, number>();
    client.on('message', (_t, p) => {
      const r = JSON.parse(p.toString()) as { id: string; outputs?: { data: number[] }[] };
      if (r.outputs?.[0].data.length === VALUES) got.set(r.id, (got.get(r.id) ?? 0) + 1);
    });
    await client.subscribeAsync(replyTo, { qos: 0 });
    const model = d.daemon.servedModels().get('big')!;
    proxy.stall();
    // Requests keep coming while the replies pile up (what was read already is answered anyway).
    for (let i = 0; i < N; i++) {
      // A long deadline: on a loaded machine the stall and the queue behind it outlast the default 5 s.
      client.publish(d.infer('big'), JSON.stringify({ id: `r${i}`, replyTo, inputs: [], timeoutMs: 120_000 }), { qos: 0 });
      await new Promise((r) => setTimeout(r, 8));
    }
    // Wait until the daemon has stopped answering (its reply buffer is full and it holds its intake).
    let last = -1;
    const settleBy = Date.now() + 30_000;
    while ((model.health.ok !== last || model.health.ok === 0) && Date.now() < settleBy) {
      last = model.health.ok;
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(model.health.ok, 'the daemon answered requests while the proxy stalled').toBeGreaterThan(0);
    // ~78 MB of replies in all: far more than loopback socket buffers hold (a few MB each way).

    expect(model.health.ok).toBeLessThan(N); // it stopped reading: the rest waits in the broker, not in the daemon's memory
    // mqtt.js once added a 'drain' listener per reply while the socket was full (O(n²) on drain).
    const stream = (d.daemon as unknown as { transport: { client: { stream: NodeJS.EventEmitter } } }).transport.client.stream;
    expect(stream.listenerCount('drain')).toBeLessThanOrEqual(3);
    proxy.resume();
    const until = Date.now() + 60_000;
    while (got.size < N && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(got.size).toBe(N);
    expect([...got.values()].every((n) => n === 1)).toBe(true);
    await client.endAsync();
  }, 90_000);
});
