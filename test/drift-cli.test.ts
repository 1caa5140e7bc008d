import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseReference, readBundle } from '../src/bundle/index.js';
import { DriftMonitor, DriftStore, buildDriftProfile, driftOptions, profileBundle } from '../src/drift/index.js';
import { sha256 } from '../src/util/fs-atomic.js';

const run = promisify(execFile);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-drift-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Run the CLI; resolves with stdout, stderr and the exit code. */
async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, EDGELOOP_HOME: '' } });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('edgeloop profile', () => {
  it('writes a bundle whose hashes verify, with the reference profile of the data', async () => {
    const out = path.join(tmp, 'digits-1.0.1');
    const r = await profileBundle('models/digits', 'data/digits.csv', { out, version: '1.0.1', chunkRows: 300 });
    const b = await readBundle(out); // verifies every artifact's sha256
    expect(b.manifest.version).toBe('1.0.1');
    const p = parseReference(b.manifest.reference, out);
    expect(p.features).toHaveLength(64);
    expect(p.features[0].counts.reduce((a, c) => a + c, 0)).toBe(1797);
    expect(p.features.every((f) => f.underflow === 0 && f.overflow === 0)).toBe(true);
    expect(p.projection?.components).toHaveLength(4);
    expect(p.predictions?.kind).toBe('classification');
    expect(p.calibration).toMatchObject({ chunkRows: 300, chunks: 20, sigma: 3 });
    expect(p.anchor?.truth).toHaveLength(32);
    expect(p.source).toMatchObject({ data: 'digits.csv', rows: 1797, builtBy: 'edgeloop profile' });
    expect(r.wrapped).toBe(false);
    // The model's own files are untouched.
    expect(b.files.get('model.onnx')).toEqual(readFileSync('models/digits/model.onnx'));
  });

  it('wraps a bare .onnx into a bundle named as `models add` would name it', async () => {
    const dir = path.join(tmp, 'bare');
    mkdirSync(dir);
    copyFileSync('models/digits/model.onnx', path.join(dir, 'sensor.onnx'));
    const r = await profileBundle(path.join(dir, 'sensor.onnx'), 'data/digits.csv', { chunkRows: 0 });
    expect(r.wrapped).toBe(true);
    expect(r.dir).toBe(path.join(dir, 'sensor'));
    const b = await readBundle(r.dir);
    expect(b.manifest.name).toBe('sensor');
    expect(b.manifest.version).toBe(sha256(readFileSync('models/digits/model.onnx')).slice(0, 12));
    expect(parseReference(b.manifest.reference, r.dir).features).toHaveLength(64);
    // A folder that is not a bundle is never overwritten.
    mkdirSync(path.join(dir, 'photos'));
    copyFileSync('data/digits.csv', path.join(dir, 'photos', 'keep.csv'));
    await expect(profileBundle(path.join(dir, 'sensor.onnx'), 'data/digits.csv', { out: path.join(dir, 'photos') })).rejects.toThrow(/not a bundle folder/);
    expect(existsSync(path.join(dir, 'photos', 'keep.csv'))).toBe(true);
  });

  it('runs from the command line and reports bad data with exit code 2', async () => {
    const [ok, bad] = await Promise.all([
      cli('profile', 'models/digits', '--data', 'data/digits.csv', '--out', path.join(tmp, 'cli-digits'), '--bundle-version', '2.0.0', '--json'),
      cli('profile', 'models/digits', '--data', 'data/digits.csv', '--label', 'nope'),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ name: 'digits', version: '2.0.0', rows: 1797, wrapped: false });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("label column 'nope' not found [EDGELOOP_DATA_INVALID]");
  });
});

describe('edgeloop drift status / report', () => {
  const home = path.join(tmp, 'home');
  const x = (rows: number, shift: number) => Float32Array.from({ length: rows * 2 }, (_, i) => ((i * 7919) % 100) / 10 + (i % 2 === 1 ? shift : 0));

  it('reads the drift state from SQLite without a daemon: status, report, --json, --svg', async () => {
    const profile = buildDriftProfile({ features: ['temp', 'rpm'], x: x(2000, 0), rows: 2000, task: 'embedding' }, { chunkRows: 0 });
    const store = DriftStore.open(home);
    const m = new DriftMonitor({ model: 'pump', version: '3', profile, options: driftOptions({ window: { rows: 200, minRows: 100 } }), store });
    m.observe(x(600, 0), 600);
    m.observe(x(400, 4), 400); // rpm drifts
    m.flush();
    store.close();

    const svg = path.join(tmp, 'drift.svg');
    const [status, report, jsonRun, missing] = await Promise.all([
      cli('drift', 'status', '--home', home),
      cli('drift', 'report', 'pump', '--home', home, '--feature', 'rpm', '--svg', svg),
      cli('drift', 'report', 'pump', '--home', home, '--json', '--since', '1h'),
      cli('drift', 'report', 'nope', '--home', home),
    ]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/pump\s+3\s+ALERT\s+5\s+1000/);
    expect(status.stdout).toContain('rpm');

    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toContain('ALERT #1');
    expect(report.stdout).toMatch(/most drifted features[^\n]*\n[^\n]*\nrpm\s+input\s+drift/);
    expect(report.stdout).toContain('rpm: histogram over the period vs the reference');
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[\s\S]*rpm[\s\S]*<\/svg>/);

    const json = JSON.parse(jsonRun.stdout);
    expect(json.windows).toBe(5);
    expect(json.features[0]).toMatchObject({ name: 'rpm', drifting: 2 });
    expect(json.series.psi.rpm).toHaveLength(5);

    expect(missing.code).toBe(3);
  });
});
