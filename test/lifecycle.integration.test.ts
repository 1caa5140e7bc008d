import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, type Reply } from './helpers/clients.js';
import { digitsSample } from './helpers/fixtures.js';
import { freePort, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

/** The real CLI as a separate process (built to dist/ by `npm test`). */
function spawnDaemon(args: string[]): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, ['bin/edgeloop.js', 'serve', '--log-level', 'info', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

/** The retained status of a device, as a new subscriber sees it. */
async function retainedStatus(url: string, deviceId: string, want?: (s: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 4 });
  try {
    return await new Promise((resolve) => {
      c.on('message', (_t, p) => {
        const s = JSON.parse(p.toString());
        if (!want || want(s)) resolve(s);
      });
      void c.subscribeAsync(`edgeloop/${deviceId}/status`);
    });
  } finally {
    await c.endAsync();
  }
}

async function until<T>(f: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('daemon process lifecycle (Mosquitto)', () => {
  let mosquitto: Mosquitto | undefined;
  let daemon: ReturnType<typeof spawnDaemon> | undefined;
  afterEach(async () => {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await mosquitto?.stop();
  });

  async function startServing(extra: string[] = []) {
    mosquitto = await startMosquitto();
    const deviceId = `life-${randomUUID().slice(0, 6)}`;
    daemon = spawnDaemon(['--broker', mosquitto.url, '--device-id', deviceId, ...extra]);
    await retainedStatus(mosquitto.url, deviceId, (s) => s.online === true);
    return { deviceId, topic: `edgeloop/${deviceId}/infer/digits` };
  }

  it('on SIGTERM answers every request in flight, publishes offline and exits 0', async () => {
    const { deviceId, topic } = await startServing();
    const client = await TestClient.connect(mosquitto!.url, 5);
    try {
      const replies: Promise<Reply>[] = [];
      for (let i = 0; i < 400; i++) replies.push(client.request(topic, { inputs: digitsSample.rows[i % 20] }, { qos: 1, timeoutMs: 30_000 }));
      // A request the broker has not accepted before the daemon unsubscribes has no one to go
      // to (MQTT drops it): wait for every PUBACK, then stop the daemon while it works on them.
      await client.allAcked();
      daemon!.child.kill('SIGTERM');
      const answered = await Promise.all(replies);
      const ok = answered.filter((r) => r.predictions);
      const refused = answered.filter((r) => r.error);
      expect(ok.length + refused.length).toBe(400); // none lost
      for (const r of refused) expect(r.error!.code).toBe('EDGELOOP_SHUTTING_DOWN');
      expect(ok.length).toBeGreaterThan(0);
      expect(await daemon!.exited).toBe(0);
      const status = await retainedStatus(mosquitto!.url, deviceId);
      expect(status).toMatchObject({ online: false, reason: 'SIGTERM' });
      expect(daemon!.output()).toContain('"msg":"edgeloop stopped"');
    } finally {
      await client.close();
    }
  }, 60_000);

  it('survives the broker going away: reconnects, resubscribes and serves again', async () => {
    const { deviceId, topic } = await startServing();
    const port = mosquitto!.port;
    await mosquitto!.stop();
    await new Promise((r) => setTimeout(r, 1500));
    expect(daemon!.child.exitCode).toBeNull(); // still running without a broker
    mosquitto = await startMosquitto(port);
    const client = await TestClient.connect(mosquitto.url, 5);
    try {
      const reply = await until(() => client.request(topic, { inputs: digitsSample.rows[2] }, { timeoutMs: 1000 }));
      expect(Number(reply.predictions![0].label)).toBe(digitsSample.labels[2]);
      expect(await retainedStatus(mosquitto.url, deviceId)).toMatchObject({ online: true });
    } finally {
      await client.close();
    }
  });

  it('is marked offline by its Last Will when killed', async () => {
    const { deviceId } = await startServing();
    daemon!.child.kill('SIGKILL');
    const status = await retainedStatus(mosquitto!.url, deviceId, (s) => s.online === false);
    expect(status).toMatchObject({ online: false, reason: 'connection lost' });
  });

  it('refuses to start with one clear line and exit code 2 on a bad config', async () => {
    const port = await freePort();
    const bad = spawnDaemon(['--port', String(port), '--device-id', 'has/slash']);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/^edgeloop: invalid configuration: 'deviceId' .*\[EDGELOOP_CONFIG_INVALID\]\n$/);
  });
});
