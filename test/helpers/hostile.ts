import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, waitForPort } from './mosquitto.js';

/** A models folder holding only the shipped digits bundle: daemons start fast. */
export function digitsOnlyModels(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-models-'));
  cpSync('models/digits', path.join(dir, 'digits'), { recursive: true });
  return dir;
}

/** Mosquitto with on-disk persistence on a fixed port, restartable (broker outage tests). */
export interface PersistentMosquitto {
  port: number;
  url: string;
  start(): Promise<void>;
  /** SIGTERM: Mosquitto saves its sessions and queues to disk, then exits. */
  stop(): Promise<void>;
}

export async function startPersistentMosquitto(): Promise<PersistentMosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-mosquitto-p-'));
  const conf = path.join(dir, 'mosquitto.conf');
  const user = process.getuid?.() === 0 ? 'user root\n' : '';
  writeFileSync(conf, `${user}listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${dir}/\nmax_queued_messages 100000\n`);
  let child: ChildProcess | undefined;
  const broker: PersistentMosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
      await waitForPort(port);
    },
    stop() {
      const c = child;
      return new Promise<void>((resolve) => {
        if (!c || c.exitCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
  };
  await broker.start();
  return broker;
}

/** Every message on a topic filter, kept by topic (what a listener on the predictions topic sees). */
export async function listen(url: string, filter: string, version: 4 | 5 = 4): Promise<{ messages: { topic: string; body: Record<string, any> }[]; close(): Promise<void>; client: MqttClient }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: version, reconnectPeriod: 0 });
  const messages: { topic: string; body: Record<string, any> }[] = [];
  client.on('message', (topic, payload) => {
    try {
      messages.push({ topic, body: JSON.parse(payload.toString()) });
    } catch {
      messages.push({ topic, body: { raw: payload.toString() } });
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { messages, client, close: () => client.endAsync(true) };
}

/** A JSON array nested `depth` levels deep around one number, as text (JSON.stringify would recurse). */
export function deeplyNested(depth: number): string {
  return '['.repeat(depth) + '1' + ']'.repeat(depth);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
