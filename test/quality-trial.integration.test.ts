import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { ModelHost } from '../src/daemon/model-host.js';
import { Registry, type Change } from '../src/registry/index.js';
import { CLI } from './helpers/cli.js';
import { makeVersion } from './helpers/bundles.js';
import { batchOf, digitsRows, editedVersion, MemoryLabelledRows, trainShuffledDigits } from './helpers/quality.js';

const exec = promisify(execFile);
const digits = digitsRows();
const log = pino({ level: process.env.EDGELOOP_TEST_LOG ?? 'silent' });
const newHome = () => mkdtempSync(path.join(os.tmpdir(), 'edgeloop-quality-home-'));
/** Labels rotated by one: the same network, every answer named wrongly. */
const rotate = (m: Record<string, unknown>) => (m.labels as string[]).push((m.labels as string[]).shift()!);
const ROTATED = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'];

let shuffled: string;
beforeAll(async () => {
  shuffled = await trainShuffledDigits('1.1.0');
});

/**
 * Feed raw digits rows with their true labels in batches of 20, as the feedback store hands
 * them over after each flush (labels as indices of the serving version's labels), until
 * `done` says so; returns the rows fed.
 */
async function feed(host: ModelHost, version: string, labels: string[], from: number, max: number, done: () => boolean): Promise<number> {
  let fed = 0;
  for (let start = from; fed < max && !done(); start += 20) {
    const rows = digits.rows.slice(start, start + 20);
    const y = digits.labels.slice(start, start + 20).map((d) => labels.indexOf(String(d)));
    await host.onLabelled('digits', batchOf(rows, y, version, start + 1));
    fed += rows.length;
  }
  return fed;
}

describe('gate, trial on labels and watch after commit (ModelHost + registry)', () => {
  const home = newHome();
  const registry = new Registry(home);
  const config = resolveConfig({ home, registry: { trial: { minInferences: 1000, windowSeconds: 3600 }, watch: { hours: 1 } } }, {}, {});
  const labelled = new MemoryLabelledRows();
  const host = new ModelHost(registry, config, log, undefined, { labelled });
  const changes: Change[] = [];
  const labelsOf = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

  beforeAll(async () => {
    await registry.install('models/digits', { actor: 'daemon', source: 'shipped' });
    await registry.activate('digits', '1.0.0', { actor: 'daemon', trial: false, reason: 'first' });
    await host.loadAll();
    registry.onChange((c) => changes.push(c));
    // The device's holdout: rows the gate scores besides the anchor sets.
    labelled.add('digits', digits.rows.slice(1000, 1100), digits.labels.slice(1000, 1100), true, '1.0.0');
  });
  afterAll(async () => {
    await host.drainAll();
    await host.disposeAll();
    registry.close();
  });

  it('refuses a model trained on shuffled labels, leaves it staged, and records why', async () => {
    await registry.install(shuffled, { actor: 'cli', source: 'manual' });
    const err = await host.activate('digits', '1.1.0', { actor: 'cli' }).catch((e) => e);
    expect(err.code).toBe('EDGELOOP_GATE_FAILED');
    expect(err.message).toMatch(/^gate refused digits@1\.1\.0: accuracy \d+\.\d% on 164 labelled rows \(64 anchor, 100 holdout\) is below registry\.gate\.minAccuracy 50\.0% vs \d+\.\d% for 1\.0\.0; pass --force/);
    expect(registry.version('digits', '1.1.0').status).toBe('staged');
    expect(registry.history('digits', 1)[0]).toMatchObject({ action: 'gate-refused', fromVersion: '1.0.0', toVersion: '1.1.0', actor: 'cli', reason: err.message });
    expect(host.get('digits')!.version).toBe('1.0.0');
  });

  it('forced on, it is rolled back by its trial on labels within 200 rows; history and event say why', async () => {
    const change = await host.activate('digits', '1.1.0', { actor: 'cli', force: true, reason: 'field test' });
    expect(change).toMatchObject({ action: 'activate-trial', from: '1.0.0', to: '1.1.0', reason: 'field test; gate skipped (--force)' });
    expect(host.comparisonOf('digits')).toMatchObject({ version: '1.1.0', previous: '1.0.0', phase: 'trial' });
    const fed = await feed(host, '1.1.0', labelsOf, 0, 200, () => host.get('digits')!.version !== '1.1.0');
    expect(fed).toBeLessThanOrEqual(200);
    expect(host.get('digits')!.version).toBe('1.0.0');
    const row = registry.version('digits', '1.1.0');
    expect(row.status).toBe('rejected');
    expect(row.statusReason).toMatch(/^trial failed on labels: \d+ of \d+ paired rows right vs \d+ of \d+ for 1\.0\.0, McNemar p=/);
    expect(changes.at(-1)).toMatchObject({ action: 'rollback', from: '1.1.0', to: '1.0.0', actor: 'daemon', reason: row.statusReason });
    expect(registry.history('digits', 1)[0]).toMatchObject({ action: 'rollback', reason: row.statusReason });
    expect(host.comparisonOf('digits')).toBeUndefined();
    // The version that came back is the shadow that was kept loaded: it still answers.
    const out = await host.get('digits')!.predict({ input: Float32Array.from(digits.rows.slice(1500, 1520).flat()) }, 20, Date.now() + 5000);
    const right = out.predictions.filter((p, i) => 'label' in p && p.label === String(digits.labels[1500 + i])).length;
    expect(right).toBeGreaterThanOrEqual(18);
  });

  it('a good new version passes the gate and commits its trial on labels, then is watched', async () => {
    await registry.install(await makeVersion('models/digits', '1.2.0'), { actor: 'cli', source: 'manual' });
    const change = await host.activate('digits', '1.2.0', { actor: 'cli' });
    expect(change.reason).toMatch(/^gate passed: accuracy 100\.0% vs 100\.0% for 1\.0\.0 on 132 labelled rows \(32 anchor, 100 holdout\)/);
    const fed = await feed(host, '1.2.0', labelsOf, 200, 200, () => registry.version('digits', '1.2.0').status === 'active');
    expect(fed).toBe(40); // batches of 20: minPaired (30) is reached with the second
    expect(registry.version('digits', '1.2.0')).toMatchObject({ status: 'active', statusReason: expect.stringMatching(/^trial passed on labels: 40 of 40 paired rows right vs 40 of 40 for 1\.0\.0, McNemar p=1\.00/) });
    expect(host.comparisonOf('digits')).toMatchObject({ version: '1.2.0', previous: '1.0.0', phase: 'watch', paired: 40 });
  });

  it('the watch after commit rolls back a committed version that turns out worse', async () => {
    await registry.install(await editedVersion('models/digits', '1.3.0', rotate), { actor: 'cli', source: 'manual' });
    // Straight to active (no trial), forced past the gate: only the watch stands between it and the devices.
    await host.activate('digits', '1.3.0', { actor: 'cli', force: true, trial: false });
    expect(host.comparisonOf('digits')).toMatchObject({ version: '1.3.0', previous: '1.2.0', phase: 'watch' });
    const fed = await feed(host, '1.3.0', ROTATED, 400, 200, () => host.get('digits')!.version !== '1.3.0');
    expect(fed).toBeLessThanOrEqual(200);
    expect(host.get('digits')!.version).toBe('1.2.0');
    expect(registry.version('digits', '1.3.0')).toMatchObject({ status: 'rejected', statusReason: expect.stringMatching(/^watch after commit: 1\.3\.0 is worse than 1\.2\.0 on labels \(\d+ of \d+ paired rows right/) });
    expect(changes.at(-1)).toMatchObject({ action: 'rollback', from: '1.3.0', to: '1.2.0', actor: 'daemon', reason: expect.stringContaining('watch') });
  });

  it('a fleet activation refused by the gate marks the version rejected, so it is not tried again', async () => {
    await registry.install(await editedVersion('models/digits', '1.4.0', rotate), { actor: 'fleet', source: 'fleet' });
    await expect(host.activate('digits', '1.4.0', { actor: 'fleet', reason: 'fleet channel stable serial 4' })).rejects.toMatchObject({ code: 'EDGELOOP_GATE_FAILED' });
    expect(registry.version('digits', '1.4.0')).toMatchObject({ status: 'rejected', statusReason: expect.stringMatching(/^gate refused digits@1\.4\.0/) });
    expect(registry.history('digits', 1)[0]).toMatchObject({ action: 'gate-refused', actor: 'fleet' });
    await expect(host.activate('digits', '1.4.0', { actor: 'fleet' })).rejects.toMatchObject({ code: 'EDGELOOP_VERSION_REJECTED' });
  });
});

describe('offline activation (no daemon): the CLI gates too, exit code 6', () => {
  it('refuses the shuffled-label model with exit 6, records it, and --force activates it saying so', async () => {
    const home = newHome();
    const registry = new Registry(home);
    await registry.install('models/digits', { actor: 'daemon', source: 'shipped' });
    await registry.activate('digits', '1.0.0', { actor: 'daemon', trial: false });
    await registry.install(shuffled, { actor: 'cli', source: 'manual' });
    registry.close();
    const cli = async (...args: string[]) =>
      exec(process.execPath, [...CLI, ...args, '--home', home]).then(
        (r) => ({ code: 0, err: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }),
      );
    const refused = await cli('activate', 'digits', '1.1.0');
    expect(refused.code).toBe(6);
    expect(refused.err).toMatch(/gate refused digits@1\.1\.0: accuracy .* \[EDGELOOP_GATE_FAILED\]/);
    const forced = await cli('activate', 'digits', '1.1.0', '--force');
    expect(forced.code, forced.err).toBe(0);
    const after = new Registry(home);
    const [last, before] = after.history('digits', 2);
    expect(last).toMatchObject({ action: 'activate-trial', toVersion: '1.1.0', reason: 'gate skipped (--force)' });
    expect(before).toMatchObject({ action: 'gate-refused', toVersion: '1.1.0', actor: 'cli' });
    after.close();
  }, 60_000);
});
