import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeloopError } from '../src/errors.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsRows, editedVersion, trainShuffledDigits } from './helpers/quality.js';
import { TEST_TRAINER } from './helpers/learning-scenario.js';

type Ack = { accepted?: number; error?: { code: string; message: string } };

/**
 * The loop through the real daemon over MQTT: a bad version is refused by the gate, forced on
 * it is rolled back by its trial once labelled feedback arrives over MQTT, and a good version
 * passes the gate and commits on labels.
 */
describe('quality gate and trial on labels through the daemon', () => {
  let d: RunningDaemon;
  let client: TestClient;
  let events: mqtt.MqttClient;
  const modelEvents: Record<string, unknown>[] = [];
  const { rows, labels } = digitsRows();
  let next = 0;

  /** `n` labelled digits rows as self-contained feedback, 20 rows a message; returns rows accepted. */
  async function feedback(n: number): Promise<number> {
    let accepted = 0;
    for (let sent = 0; sent < n; sent += 20) {
      const idx = Array.from({ length: Math.min(20, n - sent) }, () => next++ % rows.length);
      const ack = (await client.request(`edgeloop/${d.deviceId}/feedback/digits`, { inputs: idx.map((i) => rows[i]), labels: idx.map((i) => String(labels[i])) })) as Ack;
      expect(ack.error, JSON.stringify(ack.error)).toBeUndefined();
      accepted += ack.accepted ?? 0;
    }
    return accepted;
  }

  async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    const modelsDir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-loop-models-'));
    cpSync('models/digits', path.join(modelsDir, 'digits'), { recursive: true });
    d = await startDaemon({ config: { modelsDir, feedback: { flushIntervalMs: 50 }, learning: { ...TEST_TRAINER, auto: false } } });
    client = await TestClient.connect(d.url, 4);
    events = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    await events.subscribeAsync(`edgeloop/${d.deviceId}/events/model`, { qos: 1 });
    events.on('message', (_t, p) => modelEvents.push(JSON.parse(p.toString())));
  }, 60_000);
  afterAll(async () => {
    await events?.endAsync();
    await client?.close();
    await d?.stop();
  });

  it('refuses a model trained on shuffled labels; forced on, its trial rolls it back within 200 labelled rows', async () => {
    const registry = d.daemon.registry!;
    const host = d.daemon.models;
    await registry.install(await trainShuffledDigits('1.1.0'), { actor: 'cli', source: 'manual' });
    // The holdout the gate scores on comes from feedback too.
    expect(await feedback(100)).toBe(100);
    await d.daemon.feedback!.flush();
    const refused = await host.activate('digits', '1.1.0', { actor: 'cli' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EdgeloopError);
    expect((refused as EdgeloopError).code).toBe('EDGELOOP_GATE_FAILED');
    expect(registry.history('digits')[0]).toMatchObject({ action: 'gate-refused', toVersion: '1.1.0' });
    expect(d.daemon.servedModels().get('digits')!.version).toBe('1.0.0');

    await host.activate('digits', '1.1.0', { actor: 'cli', force: true });
    expect(registry.summary('digits').serving).toMatchObject({ version: '1.1.0', status: 'trial' });
    expect(registry.history('digits')[0].reason).toContain('gate skipped (--force)');
    let sent = 0;
    while (registry.summary('digits').serving?.version === '1.1.0' && sent < 200) {
      sent += await feedback(20);
      await d.daemon.feedback!.flush();
      await new Promise((r) => setTimeout(r, 100));
    }
    await until('the rollback', () => registry.summary('digits').serving?.version === '1.0.0', 5000);
    expect(sent).toBeLessThanOrEqual(200);
    const rollback = registry.history('digits').find((h) => h.action === 'rollback')!;
    expect(rollback).toMatchObject({ fromVersion: '1.1.0', toVersion: '1.0.0', actor: 'daemon' });
    expect(rollback.reason).toMatch(/trial failed on labels/);
    await until('the rollback event', () => modelEvents.some((e) => e.action === 'rollback' && e.from === '1.1.0'));
    expect(String(modelEvents.find((e) => e.action === 'rollback')!.reason)).toMatch(/McNemar/);
    expect(registry.version('digits', '1.1.0').status).toBe('rejected');
  }, 60_000);

  it('a good new version passes the gate and commits its trial on labels', async () => {
    const registry = d.daemon.registry!;
    // The float32 export of the same digits MLP, re-versioned: as good as what serves.
    await registry.install(await editedVersion('models/digits-fp32', '1.2.0', (m) => (m.name = 'digits')), { actor: 'cli', source: 'manual' });
    await d.daemon.models.activate('digits', '1.2.0', { actor: 'cli' });
    expect(registry.summary('digits').serving).toMatchObject({ version: '1.2.0', status: 'trial' });
    let sent = 0;
    while (registry.summary('digits').serving?.status === 'trial' && sent < 200) {
      sent += await feedback(20);
      await d.daemon.feedback!.flush();
      await new Promise((r) => setTimeout(r, 100));
    }
    await until('the commit', () => registry.summary('digits').serving?.status === 'active', 5000);
    expect(registry.summary('digits').serving?.version).toBe('1.2.0');
    expect(registry.history('digits').find((h) => h.action === 'commit')!.reason).toMatch(/labels/);
  }, 60_000);
});
