import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { digitsOnlyModels, sleep, startPersistentMosquitto, type PersistentMosquitto } from './helpers/hostile.js';

/** A device client with a persistent session: fixed client id, clean start off, QoS 1 both ways. */
async function persistentClient(url: string, version: 4 | 5, name: string): Promise<{ client: MqttClient; replies: Map<string, Record<string, any>>; replyTopic: string }> {
  const replyTopic = `outage/replies/${name}`;
  const client = await mqtt.connectAsync(url, {
    protocolVersion: version,
    clientId: `outage-${name}-${process.pid}`,
    clean: false,
    properties: version === 5 ? { sessionExpiryInterval: 300 } : undefined,
    reconnectPeriod: 200,
  });
  const replies = new Map<string, Record<string, any>>();
  client.on('message', (_t, payload) => {
    const body = JSON.parse(payload.toString());
    replies.set(String(body.id), body);
  });
  await client.subscribeAsync(replyTopic, { qos: 1 });
  return { client, replies, replyTopic };
}

describe.each([5, 4] as const)('a broker restart with persistent sessions (daemon on MQTT %s)', (version) => {
  let broker: PersistentMosquitto;
  let daemon: Daemon;
  const logs: Record<string, any>[] = [];
  let home: string;

  beforeAll(async () => {
    broker = await startPersistentMosquitto();
    home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-home-'));
    const config = resolveConfig({ deviceId: `outage-${version}`, home, modelsDir: digitsOnlyModels(), broker: { url: broker.url, protocolVersion: version, reconnectMinMs: 1500, reconnectMaxMs: 2000 } }, {}, {});
    const sink = new Writable({ write: (chunk, _e, cb) => (logs.push(JSON.parse(chunk.toString())), cb()) });
    daemon = new Daemon({ config, log: pino({ level: 'info' }, sink) });
    await daemon.start();
  });
  afterAll(async () => {
    await daemon?.stop();
    await broker?.stop();
  });

  it('keeps a stable client id in the state directory', () => {
    const id = readFileSync(path.join(home, 'client-id'), 'utf8').trim();
    expect(id).toMatch(new RegExp(`^edgeloop-outage-${version}-[0-9a-f]{8}$`));
    expect(statSync(path.join(home, 'client-id')).mode & 0o777).toBe(0o640);
  });

  it('loses no QoS 1 request sent before, during and after a 3 s outage; logs the downtime', async () => {
    const c = await persistentClient(broker.url, version, `v${version}`);
    const topic = daemon.topics.infer('digits');
    let sent = 0;
    const send = () => {
      const id = String(sent++);
      c.client.publish(topic, JSON.stringify({ id, replyTo: c.replyTopic, inputs: digitsSample.rows[Number(id) % digitsSample.rows.length] }), { qos: 1 });
    };
    try {
      for (let i = 0; i < 50; i++, await sleep(10)) send();
      await broker.stop();
      for (let i = 0; i < 50; i++, await sleep(20)) send(); // queued by the clients while the broker is down
      await sleep(2000);
      await broker.start();
      // The clients are back within 200 ms, the daemon only after its 1.5 s back-off: these wait
      // in the daemon's persistent session at the broker (a clean session would lose them).
      for (let i = 0; i < 50; i++, await sleep(10)) send();
      for (let i = 0; i < 200 && c.replies.size < sent; i++) await sleep(50);
      expect(c.replies.size).toBe(sent);
      for (const [id, r] of c.replies) expect(Number(r.predictions?.[0]?.label), `reply ${id}: ${JSON.stringify(r.error)}`).toBe(digitsSample.labels[Number(id) % digitsSample.rows.length]);
      expect(logs.some((l) => l.msg === 'disconnected from mqtt broker')).toBe(true);
      const back = logs.find((l) => l.msg === 'reconnected to mqtt broker');
      expect(back?.downtimeMs).toBeGreaterThan(1000);
      expect(back?.sessionPresent).toBe(true);
    } finally {
      await c.client.endAsync(true);
    }
  });
});
