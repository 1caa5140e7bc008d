import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const exec = promisify(execFile);
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string; scripts: Record<string, string> };

let dir: string;
let deb: string;
let mosquitto: Mosquitto;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-deb-'));
  // The package is made from dist/ (built by `npm test` before the suite) and the installed node_modules.
  try {
    execFileSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'ignore' });
  } catch {
    // tsc emits despite type errors; the typecheck step reports those, this test checks the package.
  }
  // --fast: dpkg-deb without compression; the test reads the contents, and gzip would cost ~15 s of CPU.
  deb = (await exec('bash', ['scripts/package-deb.sh', '--out', path.join(dir, 'out'), '--fast'], { maxBuffer: 1 << 20 })).stdout.trim();
  mosquitto = await startMosquitto();
}, 120_000);

afterAll(async () => {
  await mosquitto?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Debian package', () => {
  it('is built by npm run package:deb with dpkg-deb', () => {
    expect(pkg.scripts['package:deb']).toContain('scripts/package-deb.sh');
    expect(path.basename(deb)).toMatch(new RegExp(`^edgeloop_${pkg.version.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`));
  });

  it('declares Node 20 or later, recommends mosquitto, and keeps the device config as a conffile', async () => {
    const info = (await exec('dpkg-deb', ['-I', deb])).stdout;
    expect(info).toMatch(/^ Package: edgeloop$/m);
    expect(info).toMatch(new RegExp(`^ Version: ${pkg.version}$`, 'm'));
    expect(info).toMatch(/^ Depends: nodejs \(>= 20\)$/m);
    expect(info).toMatch(/^ Recommends: mosquitto$/m);
    expect((await exec('dpkg-deb', ['-f', deb, 'Architecture'])).stdout.trim()).toBe(execFileSync('dpkg', ['--print-architecture']).toString().trim());
    const control = path.join(dir, 'control');
    await exec('dpkg-deb', ['-e', deb, control]);
    expect(readFileSync(path.join(control, 'conffiles'), 'utf8').trim()).toBe('/etc/edgeloop/device.json');
    const postinst = readFileSync(path.join(control, 'postinst'), 'utf8');
    expect(postinst).toMatch(/adduser --system .*edgeloop|useradd --system .*edgeloop/);
    expect(postinst).toContain('install -d -m 0750 -o edgeloop -g edgeloop /var/lib/edgeloop');
  });

  it('holds the program under /usr/lib/edgeloop, /usr/bin/edgeloop, the unit, the state dir 0750 and an example config; no dev dependencies', async () => {
    const list = (await exec('dpkg-deb', ['-c', deb], { maxBuffer: 64 << 20 })).stdout.split('\n');
    const has = (p: string) => list.some((l) => l.endsWith(` ${p}`) || l.includes(` ${p} -> `));
    for (const p of ['./usr/lib/edgeloop/dist/cli/main.js', './usr/lib/edgeloop/bin/edgeloop.js', './usr/lib/edgeloop/package.json', './usr/lib/edgeloop/device-configs/jetson-orin-nano.json', './lib/systemd/system/edgeloop.service', './etc/edgeloop/device.json', './usr/lib/edgeloop/node_modules/better-sqlite3/package.json', './usr/lib/edgeloop/node_modules/onnxruntime-node/package.json']) {
      expect(has(p), p).toBe(true);
    }
    expect(list.find((l) => l.includes(' ./usr/bin/edgeloop -> '))).toContain('../lib/edgeloop/bin/edgeloop.js');
    expect(list.find((l) => l.endsWith(' ./var/lib/edgeloop/'))).toMatch(/^drwxr-x--- root\/root/);
    expect(list.some((l) => l.includes('/node_modules/vitest/') || l.includes('/node_modules/typescript/'))).toBe(false);
    expect(list.some((l) => /onnxruntime-node\/bin\/napi-v6\/(darwin|win32)\//.test(l))).toBe(false);
    expect(list.some((l) => /libonnxruntime_providers_(cuda|tensorrt)/.test(l))).toBe(false);
  });

  it('unpacked into a scratch root, runs edgeloop doctor from there against a real broker', async () => {
    const root = path.join(dir, 'root');
    await exec('dpkg-deb', ['-x', deb, root]);
    const unit = readFileSync(path.join(root, 'lib/systemd/system/edgeloop.service'), 'utf8');
    expect(unit).toContain('Type=notify');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node .*\/usr\/lib\/edgeloop\/bin\/edgeloop\.js serve --config \/etc\/edgeloop\/device\.json$/m);
    expect(unit).not.toContain('/opt/edgeloop');
    expect(statSync(path.join(root, 'var/lib/edgeloop')).mode & 0o777).toBe(0o750);
    expect(readlinkSync(path.join(root, 'usr/bin/edgeloop'))).toBe('../lib/edgeloop/bin/edgeloop.js');
    const args = [path.join(root, 'usr/bin/edgeloop'), 'doctor', '--json', '--config', path.join(root, 'etc/edgeloop/device.json'), '--home', path.join(root, 'var/lib/edgeloop'), '--broker', mosquitto.url];
    // A clean environment apart from PATH: nothing from this checkout may leak in.
    const r = await exec(process.execPath, args, { cwd: root, env: { PATH: process.env.PATH ?? '' } }).catch((e) => e);
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: { id: string; status: string; detail: string; data?: any }[] };
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(report.ok).toBe(true);
    const native = report.checks.find((c) => c.id === 'native-modules')!;
    expect(native.status).toBe('ok');
    expect(report.checks.find((c) => c.id === 'broker')!.detail).toContain(String(mosquitto.port));
    // The example config asks for the profile by detected board.
    expect(report.checks.find((c) => c.id === 'hardware')!.data.applied).toMatchObject({ requested: 'auto' });
  }, 90_000);
});
