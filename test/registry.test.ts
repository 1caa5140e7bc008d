import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../src/registry/index.js';
import { makeVersion } from './helpers/bundles.js';

const newHome = () => mkdtempSync(path.join(os.tmpdir(), 'edgeloop-reg-'));
let v101: string;
let v102: string;
beforeAll(async () => {
  v101 = await makeVersion('models/digits-fp32', '1.0.1');
  v102 = await makeVersion('models/digits-fp32', '1.0.2');
});

async function seeded(): Promise<Registry> {
  const r = new Registry(newHome());
  await r.install('models/digits-fp32', { actor: 'daemon', source: 'shipped' });
  await r.activate('digits-fp32', '1.0.0', { actor: 'daemon', trial: false, reason: 'first' });
  return r;
}

describe('registry', () => {
  it('installs into an immutable version folder, idempotently', async () => {
    const r = await seeded();
    const row = await r.install(v101, { actor: 'cli', source: 'manual' });
    expect(row).toMatchObject({ model: 'digits-fp32', version: '1.0.1', status: 'staged', source: 'manual', runtime: 'onnx' });
    expect(existsSync(path.join(r.versionDir('digits-fp32', '1.0.1'), 'bundle.json'))).toBe(true);
    expect((await r.install(v101, { actor: 'cli', source: 'manual' })).sha256).toBe(row.sha256);
    // same name and version, different bytes: refused
    const clash = await makeVersion('models/digits-fp32', '1.0.1', (b) => Uint8Array.from([...b, 0]));
    await expect(r.install(clash, { actor: 'cli', source: 'manual' })).rejects.toMatchObject({ code: 'EDGELOOP_VERSION_EXISTS' });
  });

  it('activates on trial, commits, rolls back, and records every change with its reason', async () => {
    const r = await seeded();
    await r.install(v101, { actor: 'cli', source: 'manual' });
    const a = await r.activate('digits-fp32', '1.0.1', { actor: 'cli', reason: 'field test' });
    expect(a).toMatchObject({ action: 'activate-trial', from: '1.0.0', to: '1.0.1' });
    expect(r.summary('digits-fp32')).toMatchObject({ serving: { version: '1.0.1', status: 'trial' }, previous: { version: '1.0.0' } });
    r.commit('digits-fp32', '1.0.1', 'trial passed');
    expect(r.summary('digits-fp32').serving?.status).toBe('active');
    const back = await r.rollback('digits-fp32', { actor: 'cli', reason: 'misreads sevens' });
    expect(back).toMatchObject({ action: 'rollback', from: '1.0.1', to: '1.0.0' });
    expect(r.version('digits-fp32', '1.0.1')).toMatchObject({ status: 'rejected', statusReason: 'misreads sevens' });
    // The version served again keeps a note of its own, not the other version's reason.
    expect(r.version('digits-fp32', '1.0.0')).toMatchObject({ status: 'active', statusReason: 'serving again: 1.0.1 was rolled back' });
    const history = r.history('digits-fp32').map((h) => [h.action, h.fromVersion, h.toVersion, h.reason, h.actor]);
    expect(history).toEqual([
      ['rollback', '1.0.1', '1.0.0', 'misreads sevens', 'cli'],
      ['commit', '1.0.1', '1.0.1', 'trial passed', 'daemon'],
      ['activate-trial', '1.0.0', '1.0.1', 'field test', 'cli'],
      ['install', null, '1.0.1', 'installed from manual', 'cli'],
      ['activate', null, '1.0.0', 'first', 'daemon'],
      ['install', null, '1.0.0', 'installed from shipped', 'daemon'],
    ]);
  });

  it('walks back through history on repeated rollbacks, then says there is nothing left', async () => {
    const r = await seeded();
    await r.install(v101, { actor: 'cli', source: 'manual' });
    await r.install(v102, { actor: 'cli', source: 'manual' });
    await r.activate('digits-fp32', '1.0.1', { actor: 'cli', trial: false });
    await r.activate('digits-fp32', '1.0.2', { actor: 'cli', trial: false });
    expect((await r.rollback('digits-fp32', { actor: 'cli' })).to).toBe('1.0.1');
    expect((await r.rollback('digits-fp32', { actor: 'cli' })).to).toBe('1.0.0');
    await expect(r.rollback('digits-fp32', { actor: 'cli' })).rejects.toMatchObject({ code: 'EDGELOOP_NOTHING_TO_ROLL_BACK' });
    await expect(r.activate('digits-fp32', '1.0.2', { actor: 'cli' })).rejects.toMatchObject({ code: 'EDGELOOP_VERSION_REJECTED' });
    expect((await r.activate('digits-fp32', '1.0.2', { actor: 'cli', force: true })).to).toBe('1.0.2');
  });

  it('refuses unknown models and versions with clear errors', async () => {
    const r = await seeded();
    await expect(r.activate('nope', '1', { actor: 'cli' })).rejects.toMatchObject({ code: 'EDGELOOP_MODEL_NOT_FOUND' });
    await expect(r.activate('digits-fp32', '9.9.9', { actor: 'cli' })).rejects.toMatchObject({ code: 'EDGELOOP_VERSION_NOT_FOUND', message: expect.stringContaining('installed: 1.0.0') });
  });

  it('leaves pinned models alone: no automatic activation, no gc', async () => {
    const r = await seeded();
    await r.install(v101, { actor: 'fleet', source: 'fleet' });
    await r.install(v102, { actor: 'fleet', source: 'fleet' });
    r.setPinned('digits-fp32', true, 'cli', 'certified build');
    await expect(r.activate('digits-fp32', '1.0.1', { actor: 'fleet' })).rejects.toMatchObject({ code: 'EDGELOOP_MODEL_PINNED' });
    expect(await r.gc(1, 'cli')).toEqual([]);
    expect(r.versions('digits-fp32')).toHaveLength(3);
    r.setPinned('digits-fp32', false, 'cli');
    const removed = await r.gc(1, 'cli');
    expect(removed.map((x) => x.version).sort()).toEqual(['1.0.1']); // newest (1.0.2) and the serving one stay
    expect(existsSync(r.versionDir('digits-fp32', '1.0.1'))).toBe(false);
    expect(r.history('digits-fp32')[0]).toMatchObject({ action: 'gc', fromVersion: '1.0.1' });
  });

  it('keeps the audit log append-only', async () => {
    const r = await seeded();
    expect(() => r.db.prepare("UPDATE audit SET reason = 'x'").run()).toThrow(/append-only/);
    expect(() => r.db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
  });

  it('verifies the target before recording a switch (prepare)', async () => {
    const r = await seeded();
    await r.install(v101, { actor: 'cli', source: 'manual' });
    await expect(
      r.activate('digits-fp32', '1.0.1', {
        actor: 'cli',
        prepare: async () => {
          throw new Error('will not load');
        },
      }),
    ).rejects.toThrow('will not load');
    expect(r.summary('digits-fp32').serving?.version).toBe('1.0.0');
  });
});
