import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { EdgeloopError } from '../src/errors.js';
import { readiness } from '../src/http/index.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';

function newDaemon(http: Record<string, unknown> = { port: 0 }): Daemon {
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-home-'));
  const config = resolveConfig({ modelsDir: 'models', deviceId: `http-${Math.random().toString(36).slice(2, 8)}`, home, broker: { port: 0 }, http: http as never }, {}, {});
  return new Daemon({ config, log: pino({ level: 'silent' }) });
}

describe('readiness()', () => {
  const base = { phase: 'serving' as const, brokerConnected: true, expected: ['a', 'b'], loaded: ['a', 'b'] };
  it('is ready only when serving, connected and every model loaded', () => {
    expect(readiness(base)).toMatchObject({ ready: true, reasons: [] });
    expect(readiness({ ...base, phase: 'loading' })).toMatchObject({ ready: false, reasons: ['daemon is loading'] });
    expect(readiness({ ...base, phase: 'draining' }).ready).toBe(false);
    expect(readiness({ ...base, brokerConnected: false }).reasons).toEqual(['broker not connected']);
    expect(readiness({ ...base, loaded: ['a'] })).toMatchObject({ ready: false, notLoaded: ['b'] });
  });
});

describe('/v2/health over HTTP', () => {
  const running: Daemon[] = [];
  afterAll(async () => {
    for (const d of running) await d.stop().catch(() => undefined);
  });

  it('is live at once and not ready while the models load, ready once serving (and in the retained status)', async () => {
    const daemon = newDaemon();
    running.push(daemon);
    let served = false;
    daemon.once('ready', () => (served = true));
    const started = daemon.start();
    while (!daemon.http && !served) await new Promise((r) => setTimeout(r, 1));
    const live = await fetch(`${daemon.http!.url}/v2/health/live`);
    expect(live.status).toBe(200);
    const early = await fetch(`${daemon.http!.url}/v2/health/ready`);
    const body = (await early.json()) as { ready: boolean; phase: string; reasons: string[] };
    // The listener opens before the first model is loaded (eight shipped models load after it).
    expect(served).toBe(false);
    expect(early.status).toBe(503);
    expect(body.ready).toBe(false);
    expect(body.phase).toBe('loading');
    expect(body.reasons).toContain('daemon is loading');
    await started;
    const ready = await fetch(`${daemon.http!.url}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, phase: 'serving', notLoaded: [] });
    expect(daemon.status()).toMatchObject({ ready: true, phase: 'serving' });
  });

  it('is not ready while draining: 503 over HTTP and ready:false in the retained status before offline', async () => {
    const daemon = newDaemon();
    running.push(daemon);
    await daemon.start();
    const watcher = await mqtt.connectAsync(daemon.brokerUrl, { protocolVersion: 4 });
    const statuses: { online: boolean; ready?: boolean; phase?: string }[] = [];
    watcher.on('message', (_t, p) => statuses.push(JSON.parse(p.toString())));
    await watcher.subscribeAsync(daemon.topics.status, { qos: 1 });
    await expect.poll(() => statuses.length).toBeGreaterThan(0);
    expect(statuses.at(-1)).toMatchObject({ online: true, ready: true });
    const url = daemon.http!.url;
    const stopped = daemon.stop('test drain');
    expect(daemon.readiness()).toMatchObject({ ready: false, phase: 'draining' });
    const res = await fetch(`${url}/v2/health/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, phase: 'draining' });
    await stopped;
    await watcher.endAsync();
    expect(statuses.some((s) => s.online && s.ready === false && s.phase === 'draining')).toBe(true);
    await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow(); // closed once stopped
  });
});

describe('HTTP listener access', () => {
  let d: RunningDaemon;
  const token = 'a-long-enough-test-token';
  afterAll(async () => {
    await d?.stop();
  });

  it('refuses a non-loopback host without a token or client certificates (EDGELOOP_CONFIG_INVALID)', () => {
    const attempt = (http: Record<string, unknown>) => () => resolveConfig({ http: http as never }, {}, {});
    expect(attempt({ port: 8080, host: '0.0.0.0' })).toThrow(EdgeloopError);
    try {
      attempt({ port: 8080, host: '0.0.0.0' })();
    } catch (err) {
      expect((err as EdgeloopError).code).toBe('EDGELOOP_CONFIG_INVALID');
      expect((err as Error).message).toMatch(/http\.host.*bearer token/);
    }
    expect(resolveConfig({ http: { port: 8080, host: '0.0.0.0', token } }, {}, {}).http?.host).toBe('0.0.0.0');
    expect(resolveConfig({ http: { port: 8080 } }, {}, {}).http).toMatchObject({ host: '127.0.0.1', metrics: true });
    expect(attempt({ port: 8080, host: '0.0.0.0', tls: { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' } })).not.toThrow();
    expect(attempt({ port: 8080, host: '0.0.0.0', tls: { cert: 'c.pem', key: 'k.pem' } })).toThrow(/bearer token/);
  });

  it('asks for the bearer token on everything but health, and answers unknown routes with a coded 404', async () => {
    d = await startDaemon({ config: { http: { port: 0, token } } });
    const url = d.daemon.http!.url;
    const anonymous = await fetch(`${url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('EDGELOOP_UNAUTHORIZED');
    expect((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401);
    const scraped = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toMatch(/^edgeloop_ready 1$/m);
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    const missing = await fetch(`${url}/nope`, { headers: { authorization: `Bearer ${token}` } });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('EDGELOOP_USAGE');
  });

  it('has no /metrics when http.metrics is false', async () => {
    const daemon = newDaemon({ port: 0, metrics: false });
    await daemon.start();
    try {
      expect(daemon.metrics).toBeUndefined();
      expect((await fetch(`${daemon.http!.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${daemon.http!.url}/v2/health/ready`)).status).toBe(200);
    } finally {
      await daemon.stop();
    }
  });
});
