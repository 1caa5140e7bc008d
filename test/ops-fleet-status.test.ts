import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetRow, type FleetDevice } from '../src/cli/fleet-status-command.js';
import { CLI } from './helpers/cli.js';
import { shippedModels } from './helpers/bundles.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const exec = promisify(execFile);
const fleet = async (...args: string[]) => exec(process.execPath, [...CLI, 'fleet', 'status', ...args]);

let mosquitto: Mosquitto;
const daemons: RunningDaemon[] = [];
const ids = ['fleet-a', 'fleet-b', 'fleet-c'].map((d) => `${d}-${Math.random().toString(36).slice(2, 6)}`);

beforeAll(async () => {
  mosquitto = await startMosquitto();
  // Each daemon serves one shipped bundle (the rows list its models; one is enough to check them).
  const modelsDir = shippedModels('digits');
  for (const deviceId of ids) daemons.push(await startDaemon({ broker: mosquitto.url, deviceId, config: { modelsDir } }));
}, 60_000);

afterAll(async () => {
  for (const d of daemons) await d.stop();
  await mosquitto?.stop();
});

describe('edgeloop fleet status', () => {
  it('lists three daemons on one Mosquitto with their models, and shows a stopped one offline', async () => {
    const first = JSON.parse((await fleet('--broker', mosquitto.url, '--json')).stdout) as FleetDevice[];
    expect(first.map((d) => d.deviceId)).toEqual([...ids].sort());
    for (const d of first) {
      expect(d.online).toBe(true);
      expect(d.models.map((m) => m.name)).toContain('digits');
      expect(d.models.every((m) => /^\d+\.\d+\.\d+/.test(m.version))).toBe(true);
      expect(d.trials).toEqual([]);
    }
    await daemons[1].stop();
    const after = JSON.parse((await fleet('--broker', mosquitto.url, '--json')).stdout) as FleetDevice[];
    const byId = new Map(after.map((d) => [d.deviceId, d]));
    expect(byId.get(ids[1])).toMatchObject({ online: false, reason: 'test done' });
    expect(byId.get(ids[0])?.online).toBe(true);
    expect(byId.get(ids[2])?.online).toBe(true);
    const text = (await fleet('--broker', mosquitto.url)).stdout;
    expect(text).toMatch(new RegExp(`${ids[1]}\\s+no \\(test done\\)`));
    expect(text).toMatch(new RegExp(`${ids[0]}\\s+yes\\s+.*digits@`));
  }, 60_000);

  it('filters by channel and exits 4 with one line when the broker is unreachable', async () => {
    const none = JSON.parse((await fleet('--broker', mosquitto.url, '--json', '--channel', 'stable')).stdout);
    expect(none).toEqual([]); // these daemons do not sync
    const err = await fleet('--broker', 'mqtt://127.0.0.1:1', '--json').catch((e) => e);
    expect(err.code).toBe(4);
    expect(err.stderr).toMatch(/EDGELOOP_BROKER_UNREACHABLE/);
  }, 30_000);
});

describe('fleet rows from status documents', () => {
  it('reads trial, drift, accuracy and sync fields, and tolerates absent or null ones', () => {
    const row = fleetRow('dev9', {
      deviceId: 'dev9',
      online: true,
      sync: { channel: 'stable', serial: 4 },
      models: [
        { name: 'a', version: '1.1.0', state: 'trial', drift: { alert: { message: 'x' } }, sync: { outcome: 'installed', version: '1.1.0', code: null, at: '2026-01-02T00:00:00Z' } },
        { name: 'b', version: '2.0.0', drift: null, accuracyAlert: true, liveAccuracy: 0.71, sync: { outcome: 'rejected', version: '2.1.0', code: 'EDGELOOP_GATE_FAILED', at: '2026-01-03T00:00:00Z' } },
        { name: 'c', version: '0.1.0' },
      ],
    });
    expect(row).toMatchObject({ deviceId: 'dev9', online: true, channel: 'stable', trials: ['a'], driftAlerts: ['a'], accuracyAlerts: ['b'], lastSync: 'rejected 2.1.0 [EDGELOOP_GATE_FAILED]' });
    expect(row.models[1].liveAccuracy).toBe(0.71);
    expect(fleetRow('x', { online: false })).toMatchObject({ deviceId: 'x', online: false, models: [], lastSync: null });
  });
});
