import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectHardware, listProfiles, resolveConfig } from '../src/config/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-board-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Faked board files, as Linux exposes them (device-tree strings end in NUL). */
function board(name: string, files: { model?: string; tegra?: string }, arch = 'arm64') {
  const deviceTreeModel = path.join(dir, `${name}-model`);
  const tegraRelease = path.join(dir, `${name}-nv_tegra_release`);
  if (files.model !== undefined) writeFileSync(deviceTreeModel, `${files.model}\0`);
  if (files.tegra !== undefined) writeFileSync(tegraRelease, files.tegra);
  return { deviceTreeModel, tegraRelease, arch };
}

const jetson = board('jetson', { model: 'NVIDIA Jetson Orin Nano Developer Kit', tegra: '# R36 (release), REVISION: 3.0' });
const pi = board('pi', { model: 'Raspberry Pi 4 Model B Rev 1.4' });
const x86 = board('x86', {}, 'x64');
const otherArm = board('rock', { model: 'Radxa ROCK 5B' });

describe('detectHardware on faked board files', () => {
  it('tells Jetson, Raspberry Pi and a plain x86 machine apart, saying why', () => {
    expect(detectHardware(jetson)).toMatchObject({ board: 'jetson', model: 'NVIDIA Jetson Orin Nano Developer Kit' });
    expect(detectHardware(jetson).evidence).toContain('nv_tegra_release');
    expect(detectHardware(pi)).toMatchObject({ board: 'raspberry-pi', model: 'Raspberry Pi 4 Model B Rev 1.4' });
    expect(detectHardware(x86)).toMatchObject({ board: 'generic', arch: 'x64' });
    expect(detectHardware(otherArm)).toMatchObject({ board: 'generic' });
  });
});

describe('--profile auto', () => {
  it('applies the Jetson profile on a Jetson, with the reason in the resolved config', () => {
    const c = resolveConfig({}, { profile: 'auto' }, {}, { probe: jetson });
    expect(c.deviceProfile).toMatchObject({ requested: 'auto', name: 'jetson-orin-nano', board: 'jetson' });
    expect(c.deviceProfile!.reason).toMatch(/Jetson detected/);
    expect(c.onnx.executionProviders).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(c.serving.maxBatch).toBe(64);
  });

  it('applies the Raspberry Pi profile on a Pi and the x86 gateway profile on x86', () => {
    const p = resolveConfig({}, { profile: 'auto' }, {}, { probe: pi });
    expect(p.deviceProfile?.name).toBe('raspberry-pi-4');
    expect(p.onnx.executionProviders).toEqual(['xnnpack', 'cpu']);
    expect(p.tfjs.backends).toEqual(['wasm', 'cpu']);
    const g = resolveConfig({}, { profile: 'auto' }, {}, { probe: x86 });
    expect(g.deviceProfile?.name).toBe('x86-gateway');
    expect(g.broker.url).toBe('mqtt://127.0.0.1:1883');
  });

  it('lets explicit settings win over the profile: file, environment and flags', () => {
    const c = resolveConfig({ profile: 'auto', serving: { maxBatch: 8 } }, { broker: { url: 'mqtt://other:1883' } }, { EDGELOOP_HOME: '/srv/edge' }, { probe: jetson });
    expect(c.serving.maxBatch).toBe(8); // file
    expect(c.serving.queueLimit).toBe(4096); // profile, not overridden
    expect(c.home).toBe('/srv/edge'); // environment
    expect(c.broker.url).toBe('mqtt://other:1883'); // flag
    expect(c.broker.sharedGroup).toBe('edge'); // profile's other broker settings kept
  });

  it('applies no profile on a board none fits, and none at all unless asked', () => {
    const none = resolveConfig({}, { profile: 'auto' }, {}, { probe: otherArm });
    expect(none.deviceProfile).toMatchObject({ name: null, board: 'generic' });
    expect(none.deviceProfile!.reason).toMatch(/no profile fits/);
    expect(none.serving.maxBatch).toBe(32);
    expect(resolveConfig({}, {}, {}, { probe: jetson }).deviceProfile).toBeNull();
  });

  it('takes a profile by name (config or EDGELOOP_PROFILE) and refuses an unknown one with the list', () => {
    expect(resolveConfig({ profile: 'raspberry-pi-4' }, {}, {}, { probe: x86 }).serving.maxBatch).toBe(16);
    expect(resolveConfig({}, {}, { EDGELOOP_PROFILE: 'raspberry-pi-4' }, { probe: x86 }).deviceProfile?.name).toBe('raspberry-pi-4');
    expect(() => resolveConfig({ profile: 'toaster' })).toThrow(/'profile' toaster is not one of: auto, jetson-orin-nano/);
    expect(listProfiles()).toEqual(['jetson-orin-nano', 'raspberry-pi-4', 'x86-gateway']);
  });
});
