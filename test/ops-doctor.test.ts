import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/index.js';
import { SyncStore, generateSigningKey } from '../src/sync/index.js';
import { CLI } from './helpers/cli.js';
import { freePort, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const exec = promisify(execFile);

interface Report {
  ok: boolean;
  checks: { id: string; status: 'ok' | 'warn' | 'fail' | 'skip'; detail: string; hint?: string; data?: Record<string, unknown> }[];
}

async function doctor(config: object): Promise<{ code: number; report: Report; stdout: string }> {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  try {
    const { stdout } = await exec(process.execPath, [...CLI, 'doctor', '--json', '--timeout', '2000', '--config', file], { env: { ...process.env, EDGELOOP_HOME: '', EDGELOOP_BROKER: '' } });
    return { code: 0, report: JSON.parse(stdout), stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, report: JSON.parse(e.stdout), stdout: e.stdout };
  }
}

const byId = (r: Report, id: string) => r.checks.find((c) => c.id === id)!;

let dir: string;
let mosquitto: Mosquitto;
let repo: http.Server;
let repoUrl: string;
let keyFile: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-doctor-'));
  mosquitto = await startMosquitto();
  // A real static release repository: it serves channels/stable.json, 404 for the rest.
  repo = http.createServer((req, res) => {
    res.statusCode = req.url === '/channels/stable.json' ? 200 : 404;
    res.end(res.statusCode === 200 ? '{}' : '');
  });
  await new Promise<void>((r) => repo.listen(0, '127.0.0.1', () => r()));
  repoUrl = `http://127.0.0.1:${(repo.address() as AddressInfo).port}`;
  keyFile = path.join(dir, 'release.pub');
  writeFileSync(keyFile, generateSigningKey().publicPem);
}, 30_000);

afterAll(async () => {
  await mosquitto?.stop();
  await new Promise((r) => repo?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('edgeloop doctor', () => {
  it('passes on a healthy setup: broker connected, state writable, keys readable, repository reachable (exit 0)', async () => {
    const home = path.join(dir, 'healthy-home');
    mkdirSync(home, { mode: 0o750 });
    const { code, report } = await doctor({ home, broker: { url: mosquitto.url }, sync: { repoUrl, trustedKeys: [keyFile] } });
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(byId(report, 'broker')).toMatchObject({ status: 'ok' });
    expect(byId(report, 'broker').detail).toContain(`127.0.0.1:${mosquitto.port}`);
    expect(byId(report, 'trusted-keys')).toMatchObject({ status: 'ok' });
    expect(byId(report, 'release-repository')).toMatchObject({ status: 'ok' });
    expect(byId(report, 'state-directory')).toMatchObject({ status: 'ok' });
    expect(byId(report, 'disk')).toMatchObject({ status: 'ok' });
    expect(byId(report, 'clock')).toMatchObject({ status: 'ok' });
    expect(byId(report, 'http-port')).toMatchObject({ status: 'skip' });
    // What this onnxruntime really has: cpu always; the configured providers compared with it.
    const ort = byId(report, 'onnxruntime').data as { providers: { name: string; available: boolean }[] };
    expect(ort.providers).toContainEqual({ name: 'cpu', available: true });
    expect(byId(report, 'native-modules').detail).toMatch(/better-sqlite3 .*onnxruntime-node/);
    expect(byId(report, 'tfjs').data).toHaveProperty('backend');
    expect((byId(report, 'hardware').data as { fits: { name: string | null } }).fits).toHaveProperty('reason');
  }, 60_000);

  it('fails on a broken setup: unreachable broker, unreadable key, full reserve, missing channel (exit 1, each named)', async () => {
    const deadPort = await freePort();
    const keyDir = path.join(dir, 'not-a-key'); // a directory where a PEM file should be: unreadable as a key
    mkdirSync(keyDir);
    const { code, report } = await doctor({
      home: path.join(dir, 'broken-home'),
      broker: { url: `mqtt://127.0.0.1:${deadPort}` },
      sync: { repoUrl, channel: 'nightly', trustedKeys: [keyDir], reserveBytes: Number.MAX_SAFE_INTEGER },
    });
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(byId(report, 'broker')).toMatchObject({ status: 'fail' });
    expect(byId(report, 'broker').detail).toContain(String(deadPort));
    expect(byId(report, 'trusted-keys')).toMatchObject({ status: 'fail' });
    expect(byId(report, 'trusted-keys').detail).toContain('not-a-key');
    expect(byId(report, 'disk')).toMatchObject({ status: 'fail' });
    expect(byId(report, 'disk').detail).toMatch(/below the reserve/);
    expect(byId(report, 'release-repository')).toMatchObject({ status: 'fail' });
    expect(byId(report, 'release-repository').detail).toContain('404');
    // The rest still ran and passed: one broken part does not hide the others.
    expect(byId(report, 'native-modules')).toMatchObject({ status: 'ok' });
  }, 60_000);

  it('fails the clock check when the accepted release metadata has expired (sync frozen)', async () => {
    const home = path.join(dir, 'clock-home');
    const db = openDatabase(home);
    new SyncStore(db).accept({ channel: 'stable', serial: 3, canonical: '{}', metadata: '{}', etag: null, expires: '2025-01-01T00:00:00.000Z' });
    db.close();
    const { code, report } = await doctor({ home, broker: { url: mosquitto.url }, sync: { repoUrl, trustedKeys: [keyFile] } });
    expect(code).toBe(1);
    expect(byId(report, 'clock')).toMatchObject({ status: 'fail' });
    expect(byId(report, 'clock').detail).toMatch(/serial 3\) expired at 2025-01-01/);
    expect(byId(report, 'broker')).toMatchObject({ status: 'ok' });
  }, 60_000);

  it('reports an invalid config as a failed check, not a crash', async () => {
    const { code, report } = await doctor({ broker: { port: 'x' } });
    expect(code).toBe(1);
    expect(report.checks[0]).toMatchObject({ id: 'config', status: 'fail' });
    expect(report.checks[0].detail).toContain("'broker.port'");
  }, 30_000);

  it('prints a table for people with the failures explained', async () => {
    const file = path.join(dir, 'table.json');
    writeFileSync(file, JSON.stringify({ home: path.join(dir, 'table-home'), broker: { url: `mqtt://127.0.0.1:${await freePort()}` } }));
    const r = await exec(process.execPath, [...CLI, 'doctor', '--timeout', '1000', '--config', file]).catch((e) => e);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+MQTT broker reachable/);
    expect(r.stdout).toContain('what to do:');
    expect(r.stdout).toMatch(/1 check\(s\) failed/);
  }, 30_000);
});
