import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, promises as fs, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle, writeBundle } from '../src/bundle/index.js';
import { CHANNEL_TYPE, loadSigningKey, publishRelease, readChannel, signMetadata, type ReleaseEntry, type RoundReport, type SigningKey } from '../src/sync/index.js';
import { sha256 } from '../src/util/fs-atomic.js';
import { makeVersion } from './helpers/bundles.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const exec = promisify(execFile);
const DAY = 86_400_000;
const MODEL = 'digits-fp32';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scratch = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-sync-it-'));

/** Run the real CLI; returns exit code, stdout and stderr. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/edgeloop.js', ...args]);
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

/** A new version of a shipped bundle with an extra artifact of `bytes` random bytes (a bigger download). */
async function padded(version: string, bytes: number): Promise<{ dir: string; paddingSha: string }> {
  const { manifest, files } = await readBundle(`models/${MODEL}`);
  const padding = randomBytes(bytes);
  files.set('padding.bin', padding);
  const dir = path.join(scratch, `${MODEL}-${version}`);
  const { format: _f, artifacts: _a, ...draft } = manifest;
  await writeBundle(dir, { ...draft, version }, files, { overwrite: true });
  return { dir, paddingSha: sha256(padding) };
}

describe('fleet sync from a real nginx, while the daemon serves', () => {
  let nginx: Nginx;
  let d: RunningDaemon;
  let home: string;
  let client: TestClient;
  let events: MqttClient;
  const seen: Record<string, unknown>[] = [];
  let repo: string;
  let opsKey: string;
  let ops: SigningKey;
  let serial1Copy: string;
  const traffic = { running: true, ok: 0, wrong: [] as string[], versions: new Set<string>(), done: Promise.resolve() };

  const syncConfig = () => ({
    repoUrl: nginx.url,
    channel: 'stable',
    trustedKeys: [`${opsKey}.pub`],
    pollIntervalSeconds: 3600,
    maxBundleBytes: 2_000_000,
    timeoutMs: 2000,
    retries: 4,
    retryBaseMs: 100,
    retryMaxMs: 400,
  });
  const round = (): Promise<RoundReport> => d.daemon.sync!.requestRound('manual', { unconditional: true }).done;
  const resultOf = (r: RoundReport) => r.models.find((m) => m.model === MODEL)!;
  const serving = () => d.daemon.registry!.summary(MODEL).serving!.version;
  const installed = () => d.daemon.registry!.versions(MODEL).map((v) => v.version);
  const served = async () => (await client.request(d.infer(MODEL), { inputs: digitsSample.rows[0] })).version;
  const publish = (bundles: string[], over: Partial<Parameters<typeof publishRelease>[0]> = {}) =>
    publishRelease({ repo, channel: 'stable', bundles, keys: [ops], rollout: 100, expiresInMs: DAY, rollback: false, ...over });
  /** Sign and write channel metadata by hand (what `publish` itself refuses to write). */
  async function writeSigned(models: Record<string, ReleaseEntry>): Promise<number> {
    const serial = (await readChannel(repo, 'stable'))!.signed.serial + 1;
    const doc = signMetadata({ type: CHANNEL_TYPE, channel: 'stable', serial, expires: new Date(Date.now() + DAY).toISOString(), models }, [ops]);
    writeFileSync(path.join(repo, 'channels/stable.json'), JSON.stringify(doc));
    return serial;
  }
  async function entryFor(dir: string, over: Partial<ReleaseEntry> = {}): Promise<ReleaseEntry> {
    const bytes = await fs.readFile(path.join(dir, 'bundle.json'));
    await fs.writeFile(path.join(repo, 'blobs/sha256', sha256(bytes)), bytes);
    return { version: JSON.parse(bytes.toString()).version, bundle: { sha256: sha256(bytes), bytes: bytes.length }, rollout: 100, rollback: false, ...over };
  }
  /** A rejected update: the round says why, and what serves is what served before. */
  async function expectUnchanged(report: RoundReport, before: string): Promise<void> {
    expect(serving()).toBe(before);
    expect(await served()).toBe(before);
    expect(report.models.every((m) => m.outcome !== 'installed' && m.outcome !== 'rolled-back')).toBe(true);
  }

  beforeAll(async () => {
    repo = path.join(scratch, 'repo');
    mkdirSync(repo, { recursive: true });
    opsKey = path.join(scratch, 'ops.key');
    const keygen = await cli('keygen', '--out', opsKey, '--json');
    expect(keygen.code, keygen.err).toBe(0);
    expect(statSync(opsKey).mode & 0o777).toBe(0o600);
    ops = await loadSigningKey(opsKey);
    nginx = await startNginx(repo);
    // Only the model under test is shipped: a faster start. Trials here judge failures, not the
    // latency of a loaded 2-core CI machine.
    const shipped = path.join(scratch, 'shipped');
    cpSync(`models/${MODEL}`, path.join(shipped, MODEL), { recursive: true });
    d = await startDaemon({ config: { modelsDir: shipped, sync: syncConfig(), registry: { trial: { minInferences: 10, windowSeconds: 60, maxP99Factor: 1000 } } } });
    home = d.daemon.registry!.home;
    client = await TestClient.connect(d.url, 4);
    events = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    events.on('message', (_t, p) => seen.push(JSON.parse(p.toString())));
    await events.subscribeAsync(d.daemon.topics.events('sync'));
    // A client asks for predictions the whole time; every answer must be right.
    traffic.done = (async () => {
      const until = Date.now() + 120_000;
      for (let i = 0; traffic.running && Date.now() < until; i++) {
        const row = i % digitsSample.rows.length;
        try {
          const r = await client.request(d.infer(MODEL), { inputs: digitsSample.rows[row] }, { timeoutMs: 5000 });
          if (r.error || r.predictions?.[0]?.index !== digitsSample.labels[row]) traffic.wrong.push(JSON.stringify(r).slice(0, 300));
          else {
            traffic.ok++;
            traffic.versions.add(r.version!);
          }
        } catch (err) {
          traffic.wrong.push(String(err));
        }
        await sleep(5);
      }
    })();
  });

  afterAll(async () => {
    traffic.running = false;
    await traffic.done;
    await events?.endAsync();
    await client?.close();
    await d?.stop();
    await nginx?.stop();
  });

  it('installs a release, on trial, as soon as the MQTT notice arrives', async () => {
    const v110 = await makeVersion(`models/${MODEL}`, '1.1.0');
    const r = await cli('publish', v110, '--channel', 'stable', '--key', opsKey, '--repo', repo, '--rollout', '100', '--expires', '7d', '--announce', d.url, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ serial: 1, announced: 'edgeloop/fleet/stable/release' });
    serial1Copy = readFileSync(path.join(repo, 'channels/stable.json'), 'utf8');
    await expect.poll(served, { timeout: 10_000, interval: 100 }).toBe('1.1.0');
    expect(d.daemon.registry!.version(MODEL, '1.1.0').source).toBe('fleet');
    await expect.poll(() => seen.find((e) => e.model === MODEL && e.outcome === 'installed'), { timeout: 5000 }).toMatchObject({ trigger: 'notice', version: '1.1.0', from: '1.0.0', serial: 1 });
    const log = await nginx.accessLog();
    expect(log.some((l) => l.path === '/channels/stable.json' && l.status === 200)).toBe(true);
    expect(log.filter((l) => l.path.startsWith('/blobs/sha256/') && l.status === 200).length).toBeGreaterThanOrEqual(2);

    // The retained status tells the result; with traffic, the trial commits.
    const watcher = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    let status: { models: { name: string; state: string; sync: { outcome: string; version: string } | null }[] } | undefined;
    watcher.on('message', (_t, p) => (status = JSON.parse(p.toString())));
    await watcher.subscribeAsync(d.daemon.topics.status);
    await expect.poll(() => status?.models.find((m) => m.name === MODEL), { timeout: 15_000 }).toMatchObject({ state: 'active', sync: { outcome: 'installed', version: '1.1.0' } });
    await watcher.endAsync();

    // A poll asks with If-None-Match, and nginx answers 304.
    const poll = await d.daemon.sync!.requestRound('poll').done;
    expect(poll.metadata).toBe('not-modified');
    expect(resultOf(poll).outcome).toBe('up-to-date');
    const last = (await nginx.accessLog()).filter((l) => l.path === '/channels/stable.json').at(-1)!;
    expect(last).toMatchObject({ status: 304 });
    expect(last.ifNoneMatch).not.toBe('');
  });

  it('refuses a tampered blob, then installs once the repository holds the right bytes', async () => {
    const v120 = await padded('1.2.0', 2000);
    await publish([v120.dir]);
    const blob = path.join(repo, 'blobs/sha256', v120.paddingSha);
    const good = await fs.readFile(blob);
    const bad = Buffer.from(good);
    bad[1000] ^= 0xff;
    await fs.writeFile(blob, bad);
    const report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_BUNDLE_TAMPERED', version: '1.2.0' });
    await expectUnchanged(report, '1.1.0');
    expect(installed()).not.toContain('1.2.0');
    await fs.writeFile(blob, good);
    expect(resultOf(await round())).toMatchObject({ outcome: 'installed', version: '1.2.0' });
    expect(await served()).toBe('1.2.0');
  });

  it('refuses metadata with a bad signature, signed by an unknown key, or expired', async () => {
    const acceptedSerial = d.daemon.sync!.status().serial;
    const v130 = await makeVersion(`models/${MODEL}`, '1.3.0');
    await publish([v130]);
    const file = path.join(repo, 'channels/stable.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.signed.models[MODEL].rollout = 99; // one changed number, signature kept
    writeFileSync(file, JSON.stringify(doc));
    let report = await round();
    expect(report).toMatchObject({ metadata: 'rejected', error: { code: 'EDGELOOP_SIGNATURE_INVALID' } });
    expect(report.error!.message).toMatch(/does not verify/);
    await expectUnchanged(report, '1.2.0');

    const rogue = path.join(scratch, 'rogue.key');
    expect((await cli('keygen', '--out', rogue)).code).toBe(0);
    await publish([v130], { keys: [await loadSigningKey(rogue)] });
    report = await round();
    expect(report).toMatchObject({ metadata: 'rejected', error: { code: 'EDGELOOP_SIGNATURE_INVALID' } });
    expect(report.error!.message).toMatch(/not trusted/);
    await expectUnchanged(report, '1.2.0');

    await publish([v130], { now: new Date(Date.now() - 2 * DAY), expiresInMs: DAY });
    report = await round();
    expect(report).toMatchObject({ metadata: 'rejected', error: { code: 'EDGELOOP_METADATA_EXPIRED' } });
    await expectUnchanged(report, '1.2.0');
    expect(d.daemon.sync!.status().serial).toBe(acceptedSerial);
    expect(installed()).not.toContain('1.3.0');
    expect(seen.some((e) => e.outcome === 'rejected' && e.code === 'EDGELOOP_METADATA_EXPIRED' && e.model === undefined)).toBe(true);
  });

  it('refuses replayed older metadata', async () => {
    const file = path.join(repo, 'channels/stable.json');
    const newest = readFileSync(file, 'utf8');
    writeFileSync(file, serial1Copy);
    const report = await round();
    expect(report).toMatchObject({ metadata: 'rejected', error: { code: 'EDGELOOP_METADATA_REPLAYED' } });
    expect(report.error!.message).toMatch(/serial 1 is older than serial 2/);
    await expectUnchanged(report, '1.2.0');
    writeFileSync(file, newest);
  });

  it('refuses a mix-and-match bundle: the right hash of another model', async () => {
    const other = await makeVersion('models/digits', '1.4.0');
    const entry = await entryFor(other);
    await writeSigned({ [MODEL]: { ...entry, version: '1.4.0' } });
    const report = await round();
    expect(report.metadata).toBe('updated');
    expect(resultOf(report)).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_UPDATE_REJECTED' });
    expect(resultOf(report).message).toMatch(/mix-and-match/);
    await expectUnchanged(report, '1.2.0');
  });

  it('refuses an oversized release before downloading it, and a blob bigger than declared without reading it', async () => {
    const big = await padded('1.4.1', 2_500_000);
    await publish([big.dir]);
    let report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_UPDATE_TOO_LARGE' });
    await expectUnchanged(report, '1.2.0');
    expect((await nginx.accessLog()).some((l) => l.path.endsWith(big.paddingSha))).toBe(false);

    const endless = await padded('1.4.2', 50_000);
    await publish([endless.dir]);
    const blob = path.join(repo, 'blobs/sha256', endless.paddingSha);
    await fs.writeFile(blob, Buffer.alloc(30_000_000, 1)); // what an endless-data attack would serve
    report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_BUNDLE_TAMPERED' });
    await expectUnchanged(report, '1.2.0');
    const hit = (await nginx.accessLog()).filter((l) => l.path.endsWith(endless.paddingSha));
    expect(hit.length).toBe(1);
    expect(hit[0].bytesSent).toBeLessThan(30_000_000);
    await expect(fs.stat(path.join(home, 'sync/downloads', `${endless.paddingSha}.part`))).rejects.toThrow();
    expect(installed()).not.toContain('1.4.1');
    expect(installed()).not.toContain('1.4.2');
  });

  it('resumes a download cut in the middle with an HTTP Range request', async () => {
    await nginx.stop();
    await nginx.start({ limitRate: '150k' });
    const v150 = await padded('1.5.0', 900_000);
    await publish([v150.dir]);
    const pending = round();
    const part = path.join(home, 'sync/downloads', `${v150.paddingSha}.part`);
    await expect.poll(async () => (await fs.stat(part).catch(() => undefined))?.size ?? 0, { timeout: 10_000, interval: 50 }).toBeGreaterThan(200_000);
    await nginx.stop(); // the server goes away mid-download
    await nginx.start();
    const report = await pending;
    expect(resultOf(report)).toMatchObject({ outcome: 'installed', version: '1.5.0' });
    expect(await served()).toBe('1.5.0');
    const hits = (await nginx.accessLog()).filter((l) => l.path.endsWith(v150.paddingSha));
    const resumed = hits.find((l) => l.status === 206);
    expect(resumed, JSON.stringify(hits)).toBeDefined();
    const from = Number(/^bytes=(\d+)-$/.exec(resumed!.range)![1]);
    expect(from).toBeGreaterThan(200_000);
    expect(resumed!.bytesSent).toBe(900_000 - from);
  });

  it('keeps serving while the repository is down, and installs when it is back', async () => {
    await nginx.stop();
    const v160 = await makeVersion(`models/${MODEL}`, '1.6.0');
    await publish([v160]);
    const down = await round();
    expect(down).toMatchObject({ metadata: 'failed', error: { code: 'EDGELOOP_DOWNLOAD_FAILED' } });
    expect(down.error!.message).toMatch(/after 5 attempts/);
    await expectUnchanged(down, '1.5.0');
    await nginx.start();
    expect(resultOf(await round())).toMatchObject({ outcome: 'installed', version: '1.6.0' });
    expect(await served()).toBe('1.6.0');
  });

  it('refuses a downgrade that is not marked as a rollback, and accepts an operator rollback with a newer serial', async () => {
    const back = await makeVersion(`models/${MODEL}`, '1.1.0'); // the same bundle as released first
    await writeSigned({ [MODEL]: await entryFor(back) });
    let report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_UPDATE_REJECTED' });
    expect(resultOf(report).message).toMatch(/older than 1\.6\.0/);
    await expectUnchanged(report, '1.6.0');

    const r = await cli('publish', back, '--key', opsKey, '--repo', repo, '--rollback', '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).models[MODEL]).toMatchObject({ version: '1.1.0', rollback: true });
    report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'rolled-back', version: '1.1.0', from: '1.6.0' });
    expect(await served()).toBe('1.1.0');
    expect(d.daemon.registry!.version(MODEL, '1.6.0').status).toBe('rejected');
    expect(d.daemon.registry!.history(MODEL, 1)[0]).toMatchObject({ action: 'rollback', actor: 'fleet' });
  });

  it('leaves a pinned model alone, and a device outside the rollout waits; both are reported', async () => {
    await d.daemon.models.serialize(async () => d.daemon.registry!.setPinned(MODEL, true, 'cli', 'certified'));
    const v170 = await makeVersion(`models/${MODEL}`, '1.7.0');
    await publish([v170]);
    let report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'pinned', version: '1.7.0' });
    await expectUnchanged(report, '1.1.0');
    await d.daemon.models.serialize(async () => d.daemon.registry!.setPinned(MODEL, false, 'cli'));
    await publish([v170], { rollout: 0 });
    report = await round();
    expect(resultOf(report)).toMatchObject({ outcome: 'not-in-rollout', version: '1.7.0' });
    await expectUnchanged(report, '1.1.0');
    await publish([v170], { rollout: 100 }); // picked up by the next test's `sync --now`
  });

  it('`edgeloop sync --now` runs a round through the admin socket; `sync status` shows the result per model', async () => {
    const now = await cli('sync', '--now', '--home', home, '--json');
    expect(now.code, now.err).toBe(0);
    expect(JSON.parse(now.out).models.find((m: { model: string }) => m.model === MODEL)).toMatchObject({ outcome: 'installed', version: '1.7.0', from: '1.1.0' });
    expect(await served()).toBe('1.7.0');
    const st = await cli('sync', 'status', '--home', home);
    expect(st.code, st.err).toBe(0);
    expect(st.out).toMatch(/digits-fp32\s+1\.7\.0\s+installed\s+1\.1\.0/);
  });

  it('served correct predictions throughout', async () => {
    traffic.running = false;
    await traffic.done;
    expect(traffic.wrong).toEqual([]);
    expect(traffic.ok).toBeGreaterThan(200);
    for (const v of ['1.1.0', '1.2.0', '1.5.0', '1.6.0', '1.7.0']) expect(traffic.versions).toContain(v);
  });

  it('syncs offline with `edgeloop sync --now --config` when the daemon is stopped', async () => {
    await d.stop();
    await publish([await makeVersion(`models/${MODEL}`, '1.8.0')]);
    const cfg = path.join(scratch, 'device.json');
    writeFileSync(cfg, JSON.stringify({ deviceId: d.deviceId, home, modelsDir: path.join(scratch, 'shipped'), sync: syncConfig() }));
    const r = await cli('sync', '--now', '--config', cfg, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).models.find((m: { model: string }) => m.model === MODEL)).toMatchObject({ outcome: 'installed', version: '1.8.0' });
    const show = JSON.parse((await cli('models', 'show', MODEL, '--home', home, '--json')).out);
    expect(show.serving).toMatchObject({ version: '1.8.0', status: 'trial' });
  });
});
