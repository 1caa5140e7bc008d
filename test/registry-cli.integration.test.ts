import { execFile } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixBatchToOne, makeVersion, shippedModels } from './helpers/bundles.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';

const exec = promisify(execFile);
// The daemons here serve the three digits bundles the tests use, not every bundle in models/.
const modelsDir = shippedModels('digits', 'digits-fp32', 'digits-tfjs');

/** Run the real CLI; returns exit code, stdout and stderr. */
async function cli(home: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/edgeloop.js', ...args, '--home', home]);
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}
const json = async (home: string, ...args: string[]) => {
  const r = await cli(home, ...args, '--json');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out);
};

describe('field technician CLI over a running daemon, then offline', () => {
  let d: RunningDaemon;
  let home: string;
  let client: TestClient;
  let v110: string;
  const served = async () => (await client.request(d.infer('digits-fp32'), { inputs: digitsSample.rows[0] })).version;

  beforeAll(async () => {
    v110 = await makeVersion('models/digits-fp32', '1.1.0');
    d = await startDaemon({ config: { modelsDir, registry: { trial: { minInferences: 10, windowSeconds: 60 } } } });
    home = d.daemon.registry!.home;
    client = await TestClient.connect(d.url, 4);
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });

  it('shows what runs: status and models list', async () => {
    const status = await json(home, 'status');
    expect(status.deviceId).toBe(d.deviceId);
    expect(status.models.map((m: { name: string }) => m.name).sort()).toEqual(expect.arrayContaining(['digits', 'digits-fp32', 'digits-tfjs']));
    const human = await cli(home, 'status');
    expect(human.out).toMatch(/daemon: running/);
    expect(human.out).toMatch(/digits-fp32\s+1\.0\.0\s+active/);
    const list = await json(home, 'models', 'list');
    expect(list.find((m: { name: string }) => m.name === 'digits').serving.version).toBe('1.0.0');
    expect(statSync(`${home}/admin.sock`).mode & 0o777).toBe(0o600);
  });

  it('installs and activates a version on trial, which commits after healthy traffic', async () => {
    const added = await json(home, 'models', 'add', v110, '--reason', 'new calibration');
    expect(added).toMatchObject({ model: 'digits-fp32', version: '1.1.0', status: 'staged' });
    const change = await json(home, 'activate', 'digits-fp32', '1.1.0', '--reason', 'field test');
    expect(change).toMatchObject({ action: 'activate-trial', from: '1.0.0', to: '1.1.0' });
    expect(await served()).toBe('1.1.0');
    for (let i = 0; i < 12; i++) await served();
    await expect.poll(async () => (await json(home, 'models', 'show', 'digits-fp32')).serving.status, { timeout: 5000 }).toBe('active');
  });

  it('rolls back in one command, with the reason in the history', async () => {
    const events = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    const got = new Promise<Record<string, unknown>>((resolve) => events.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
    await events.subscribeAsync(d.daemon.topics.events('model'));
    const change = await json(home, 'rollback', 'digits-fp32', '--reason', 'misreads sevens');
    expect(change).toMatchObject({ action: 'rollback', from: '1.1.0', to: '1.0.0' });
    expect(await served()).toBe('1.0.0');
    expect(await got).toMatchObject({ model: 'digits-fp32', action: 'rollback', reason: 'misreads sevens', actor: 'cli' });
    await events.endAsync();
    const history = await cli(home, 'models', 'history', 'digits-fp32');
    expect(history.out).toMatch(/rollback\s+1\.1\.0\s+1\.0\.0\s+cli\s+misreads sevens/);
    expect(history.out).toMatch(/commit\s+1\.1\.0\s+1\.1\.0\s+daemon\s+trial passed/);
  });

  it('answers mistakes with one clear line and a documented exit code', async () => {
    const rejected = await cli(home, 'activate', 'digits-fp32', '1.1.0');
    expect(rejected.code).toBe(6);
    expect(rejected.err).toMatch(/^edgeloop: digits-fp32@1\.1\.0 was rejected earlier \(misreads sevens\).*\[EDGELOOP_VERSION_REJECTED\]\n$/);
    expect((await cli(home, 'rollback', 'nope')).code).toBe(3);
    expect((await cli(home, 'activate', 'digits-fp32', '7.7.7')).err).toMatch(/has no version '7\.7\.7'.*\[EDGELOOP_VERSION_NOT_FOUND\]/);
    const nothing = await cli(home, 'rollback', 'digits-tfjs');
    expect(nothing.code).toBe(6);
    expect(nothing.err).toContain('EDGELOOP_NOTHING_TO_ROLL_BACK');
  });

  it('pins and unpins, and gc keeps what matters', async () => {
    expect((await json(home, 'pin', 'digits-fp32', '--reason', 'certified')).action).toBe('pin');
    expect((await json(home, 'models', 'list')).find((m: { name: string }) => m.name === 'digits-fp32').pinned).toBe(true);
    expect(await json(home, 'gc', '--keep', '1')).toEqual([]);
    await json(home, 'unpin', 'digits-fp32');
    const removed = await json(home, 'gc', '--keep', '1');
    expect(removed).toEqual([]); // 1.1.0 is the newest, 1.0.0 serves: both stay
  });

  it('works offline when the daemon is down, and the daemon applies the change when it starts', async () => {
    await client.close();
    await d.stop();
    const status = await cli(home, 'status');
    expect(status.out).toMatch(/daemon: not running/);
    const change = await json(home, 'activate', 'digits-fp32', '1.1.0', '--force', '--reason', 'retry offline');
    expect(change).toMatchObject({ to: '1.1.0' });
    d = await startDaemon({ config: { modelsDir, home }, deviceId: d.deviceId });
    client = await TestClient.connect(d.url, 4);
    expect(await served()).toBe('1.1.0');
    expect((await json(home, 'models', 'show', 'digits-fp32')).serving.status).toBe('trial');
  });

  it('refuses to touch state a live but silent daemon holds', async () => {
    const other = `${home}-locked`;
    await cli(other, 'models', 'add', 'models/digits'); // creates the state offline
    writeFileSync(`${other}/daemon.pid`, String(process.pid)); // a live process that does not answer
    const r = await cli(other, 'rollback', 'digits');
    expect(r.code).toBe(4);
    expect(r.err).toContain('EDGELOOP_DAEMON_UNREACHABLE');
  });
});

describe('trial failure', () => {
  let d: RunningDaemon;
  afterAll(() => d?.stop());

  it('rolls a broken release back on its own, with an audit entry and an event', async () => {
    d = await startDaemon({ config: { modelsDir, registry: { trial: { minInferences: 20, maxErrorRate: 0.05 } }, serving: { maxDelayMs: 5 } } });
    const broken = await makeVersion('models/digits-fp32', '2.0.0-static-batch', fixBatchToOne);
    const registry = d.daemon.registry!;
    await registry.install(broken, { actor: 'fleet', source: 'fleet' });
    const events = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    const rollbackEvent = new Promise<Record<string, unknown>>((resolve) =>
      events.on('message', (_t, p) => {
        const e = JSON.parse(p.toString());
        if (e.action === 'rollback') resolve(e);
      }),
    );
    await events.subscribeAsync(d.daemon.topics.events('model'));
    await d.daemon.models.activate('digits-fp32', '2.0.0-static-batch', { actor: 'fleet', reason: 'release 2.0.0' });
    const client = await TestClient.connect(d.url, 4);
    try {
      // Concurrent traffic forms batches of several rows, which the broken release cannot run.
      for (let round = 0; round < 5; round++) {
        await Promise.all(Array.from({ length: 16 }, (_, i) => client.request(d.infer('digits-fp32'), { inputs: digitsSample.rows[i] })));
      }
      const event = await rollbackEvent;
      expect(event).toMatchObject({ model: 'digits-fp32', from: '2.0.0-static-batch', to: '1.0.0', actor: 'daemon' });
      expect(String(event.reason)).toMatch(/^trial failed: \d+ of \d+ requests failed/);
      expect(registry.version('digits-fp32', '2.0.0-static-batch').status).toBe('rejected');
      const reply = await client.request(d.infer('digits-fp32'), { inputs: digitsSample.rows[1] });
      expect(reply.version).toBe('1.0.0');
      expect(Number(reply.predictions![0].label)).toBe(digitsSample.labels[1]);
    } finally {
      await client.close();
      await events.endAsync();
    }
  });
});

describe('hot swap under load', () => {
  let d: RunningDaemon;
  afterAll(() => d?.stop());

  it('switches versions 10 times while 4 clients send requests, failing none', async () => {
    d = await startDaemon({ config: { modelsDir, registry: { trial: { minInferences: 1_000_000, windowSeconds: 3600 } } } });
    await d.daemon.registry!.install(await makeVersion('models/digits-tfjs', '1.1.0'), { actor: 'cli', source: 'manual' });
    const clients = await Promise.all([1, 2, 3, 4].map(() => TestClient.connect(d.url, 4)));
    let stop = false;
    const failures: unknown[] = [];
    const versions = new Set<string>();
    let answered = 0;
    const load = clients.map(async (c, ci) => {
      for (let i = 0; !stop; i++) {
        const k = (ci + i) % 20;
        const r = await c.request(d.infer('digits-tfjs'), { inputs: digitsSample.rows[k] });
        if (Number(r.predictions?.[0].label) !== digitsSample.labels[k]) failures.push(r);
        versions.add(String(r.version));
        answered++;
      }
    });
    try {
      // Each swap happens with traffic flowing: wait for 15 more answers before the next one.
      const traffic = async () => {
        const target = answered + 15;
        await expect.poll(() => answered, { timeout: 10_000, interval: 5 }).toBeGreaterThanOrEqual(target);
      };
      for (let i = 0; i < 10; i++) {
        await traffic();
        if (i % 2 === 0) await d.daemon.models.activate('digits-tfjs', '1.1.0', { actor: 'cli', force: true });
        else await d.daemon.models.rollback('digits-tfjs', { actor: 'cli', to: '1.0.0', force: true });
      }
      await traffic();
    } finally {
      stop = true;
      await Promise.all(load);
      await Promise.all(clients.map((c) => c.close()));
    }
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThanOrEqual(165);
    expect([...versions].sort()).toEqual(['1.0.0', '1.1.0']);
  });
});
