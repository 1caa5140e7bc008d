import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { CLI } from './helpers/cli.js';
import { digitsSample } from './helpers/fixtures.js';
import { sleep, startPersistentMosquitto, type PersistentMosquitto } from './helpers/hostile.js';

/**
 * Each model answers as soon as it is loaded (issue 14, start-up): the daemon connects before
 * its models load, and a request for a model still loading waits for it instead of being told
 * that the model is not served. A daemon killed with -9 comes back to the QoS 1 requests its
 * persistent session kept at Mosquitto meanwhile, for the last models to load too: every one is
 * answered, the same as once the daemon serves in full.
 */

const DEVICE = 'early';
// Bundles load by name, the tfjs ones after the tfjs backend is chosen: digits is the third of the
// eight demo bundles, digits-tfjs the last. The first request queued is for digits.
const MODELS = ['digits', 'digits-tfjs', 'digits-cnn-tfjs'];
const PER_MODEL = 10;

interface ChildDaemon {
  child: ChildProcess;
  logs: Record<string, any>[];
}

function serve(home: string, url: string): ChildDaemon {
  const child = spawn(process.execPath, [...CLI, 'serve', '--home', home, '--models', 'models', '--broker', url, '--device-id', DEVICE, '--log-level', 'info', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const logs: Record<string, any>[] = [];
  let partial = '';
  child.stdout!.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.trim()) logs.push(JSON.parse(l));
  });
  return { child, logs };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await sleep(20)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

describe('models answer as they load; requests queued across a kill -9 are answered', () => {
  let broker: PersistentMosquitto;
  let client: MqttClient;
  const replies = new Map<string, Record<string, any>>();
  const arrived = new Map<string, number>();
  const replyTo = 'early/replies';
  const daemons: ChildDaemon[] = [];

  beforeAll(async () => {
    broker = await startPersistentMosquitto();
    client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: `early-client-${process.pid}`, clean: false, reconnectPeriod: 200 });
    client.on('message', (_t, payload) => {
      const body = JSON.parse(payload.toString());
      replies.set(String(body.id), body);
      arrived.set(String(body.id), Date.now());
    });
    await client.subscribeAsync(replyTo, { qos: 1 });
  });
  afterAll(async () => {
    for (const d of daemons) d.child.kill('SIGKILL');
    await client?.endAsync(true);
    await broker?.stop();
  });

  it('answers what waited at the broker, for models still loading too, as it answers once serving', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-early-'));
    const first = serve(home, broker.url);
    daemons.push(first);
    await until('the first daemon to serve', () => first.logs.some((l) => l.msg === 'edgeloop serving'));
    first.child.kill('SIGKILL'); // no unsubscribe: its persistent session keeps what comes next
    await new Promise((r) => first.child.once('exit', r));

    const request = (tag: string, i: number) => {
      const model = MODELS[i % MODELS.length];
      return client.publishAsync(`edgeloop/${DEVICE}/infer/${model}`, JSON.stringify({ id: `${tag}-${i}`, replyTo, inputs: digitsSample.rows[i % digitsSample.rows.length] }), { qos: 1 });
    };
    const n = PER_MODEL * MODELS.length;
    for (let i = 0; i < n; i++) await request('queued', i);

    const second = serve(home, broker.url);
    daemons.push(second);
    await until('the queued requests to be answered', () => [...replies.keys()].filter((k) => k.startsWith('queued-')).length === n);
    await until('the second daemon to serve', () => second.logs.some((l) => l.msg === 'edgeloop serving'));
    // The same requests again, now that every model is loaded: the answers must not differ.
    for (let i = 0; i < n; i++) await request('after', i);
    await until('the same requests once serving', () => [...replies.keys()].filter((k) => k.startsWith('after-')).length === n);
    for (let i = 0; i < n; i++) {
      const early = replies.get(`queued-${i}`)!;
      const late = replies.get(`after-${i}`)!;
      expect(early.error, JSON.stringify(early.error)).toBeUndefined();
      expect(early.model).toBe(MODELS[i % MODELS.length]);
      expect(early.predictions[0].index).toBe(late.predictions[0].index);
      expect(early.predictions[0].confidence).toBeCloseTo(late.predictions[0].confidence, 5);
    }

    // It connected before its models were loaded, and the intake waited for one still loading.
    const at = (msg: string, model?: string) => second.logs.findIndex((l) => l.msg === msg && (model === undefined || l.model === model));
    expect(at('connected to mqtt broker')).toBeGreaterThanOrEqual(0);
    expect(at('connected to mqtt broker')).toBeLessThan(at('model loaded', 'digits-tfjs'));
    const held = second.logs.filter((l) => l.msg === 'request for a model still loading: reading on once it is loaded');
    expect(held.length).toBeGreaterThan(0);
    for (const h of held) expect(at('model loaded', h.model)).toBeGreaterThan(second.logs.indexOf(h));
    // digits answered while the bundles after it were still loading (one clock: the same machine).
    expect(arrived.get('queued-0')!).toBeLessThan(second.logs[at('model loaded', 'digits-tfjs')].time);
  }, 150_000);
});

describe('HTTP while the models load', () => {
  let daemon: Daemon | undefined;
  afterAll(async () => {
    await daemon?.stop().catch(() => undefined);
  });

  it('a request for a model still loading waits for it (not 404), and its readiness says 503 meanwhile', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-early-http-'));
    const config = resolveConfig({ modelsDir: 'models', deviceId: 'early-http', home, broker: { port: 0 }, http: { port: 0 } as never }, {}, {});
    daemon = new Daemon({ config, log: pino({ level: 'silent' }) });
    const started = daemon.start();
    while (!daemon.http) await sleep(1);
    const host = () => (daemon as unknown as { models?: { get(n: string): unknown } }).models;
    // The listener opens before the models load; digits-tfjs is among the last of eight.
    const loadingAtSend = daemon.phase === 'loading' && host()?.get('digits-tfjs') === undefined;
    const ready = fetch(`${daemon.http.url}/v2/models/digits-tfjs/ready`);
    const predicted = fetch(`${daemon.http.url}/predict?model=digits-tfjs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: digitsSample.rows[0] }) });
    expect(loadingAtSend).toBe(true);
    expect((await ready).status).toBe(503);
    const res = await predicted;
    const body = (await res.json()) as { prediction?: unknown; predictions?: unknown; error?: unknown };
    expect(res.status, JSON.stringify(body)).toBe(200);
    await started;
    const again = await fetch(`${daemon.http.url}/predict?model=digits-tfjs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: digitsSample.rows[0] }) });
    const { predictionId: _a, latencyMs: _b, ...early } = body as Record<string, unknown>;
    const { predictionId: _c, latencyMs: _d, ...late } = (await again.json()) as Record<string, unknown>;
    expect(early.prediction).toBeDefined();
    expect(early).toEqual(late);
    expect((await fetch(`${daemon.http.url}/v2/models/digits-tfjs/ready`)).status).toBe(200);
  }, 60_000);
});

describe('a stop while the models load', () => {
  it('ends the start at its next step: no ready, nothing left open, the state directory reusable', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-early-stop-'));
    const make = () => new Daemon({ config: resolveConfig({ modelsDir: 'models', deviceId: 'early-stop', home, broker: { port: 0 } }, {}, {}), log: pino({ level: 'silent' }) });
    const daemon = make();
    let ready = false;
    daemon.once('ready', () => (ready = true));
    const started = daemon.start();
    // Eight bundles take a while to load: the stop comes while they do.
    while (daemon.phase !== 'loading') await sleep(1);
    const stopped = daemon.stop('test');
    await expect(started).resolves.toBeUndefined();
    await stopped;
    expect(ready).toBe(false);
    expect(daemon.phase).toBe('stopped');
    expect(existsSync(path.join(home, 'admin.sock'))).toBe(false);
    // The state lock was released and nothing half-open remains: the next start serves.
    const next = make();
    try {
      await next.start();
      expect(next.phase).toBe('serving');
    } finally {
      await next.stop();
    }
  }, 60_000);
});
