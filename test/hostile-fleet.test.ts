import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, promises as fs, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import onnxProto from 'onnx-proto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle, writeBundle } from '../src/bundle/index.js';
import { resolveConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { Registry } from '../src/registry/index.js';
import { SyncService, generateSigningKey, loadSigningKey, offlineHost, publishRelease, type RoundReport, type SigningKey } from '../src/sync/index.js';
import { redactText, redactUrl } from '../src/util/redact.js';
import { makeVersion } from './helpers/bundles.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const { onnx } = onnxProto;
const exec = promisify(execFile);
const DAY = 86_400_000;
const MODEL = 'digits-fp32';
const scratch = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-hostile-fleet-'));
const PASSWORD = 'Pa55-w0rd-NOT-TO-LEAK';

async function opsKey(): Promise<{ file: string; key: SigningKey }> {
  const file = path.join(scratch, `ops-${randomBytes(3).toString('hex')}.key`);
  const k = generateSigningKey();
  await fs.writeFile(file, k.privatePem, { mode: 0o600 });
  await fs.writeFile(`${file}.pub`, k.publicPem);
  return { file, key: await loadSigningKey(file) };
}

/** A new version of the shipped bundle with an extra artifact of `bytes` random bytes. */
async function padded(version: string, bytes: number): Promise<{ dir: string; paddingSha: string }> {
  const { manifest, files } = await readBundle(`models/${MODEL}`);
  const padding = randomBytes(bytes);
  files.set('padding.bin', padding);
  const dir = path.join(scratch, `${MODEL}-${version}`);
  const { format: _f, artifacts: _a, ...draft } = manifest;
  await writeBundle(dir, { ...draft, version }, files, { overwrite: true });
  const { createHash } = await import('node:crypto');
  return { dir, paddingSha: createHash('sha256').update(padding).digest('hex') };
}

/**
 * A mirror that serves `root` like a static repository, except the blobs named in `slow`: those
 * get their real Content-Length, then 1 byte a second.
 */
async function slowMirror(root: string, slow: Set<string>): Promise<{ url: string; close(): Promise<void>; hits: string[] }> {
  const hits: string[] = [];
  const server = http.createServer(async (req, res) => {
    const url = req.url ?? '/';
    hits.push(url);
    const file = path.join(root, decodeURIComponent(url.split('?')[0]));
    const st = await fs.stat(file).catch(() => undefined);
    if (!st?.isFile()) return void res.writeHead(404).end();
    const sha = path.basename(file);
    if (!slow.has(sha)) {
      res.writeHead(200, { 'content-length': st.size });
      return void createReadStream(file).pipe(res);
    }
    const body = await fs.readFile(file);
    res.writeHead(200, { 'content-length': body.length });
    res.flushHeaders();
    let i = 0;
    const drip = () => {
      if (res.destroyed || i >= body.length) return clearInterval(t);
      res.write(body.subarray(i, i + 1));
      i++;
    };
    const t = setInterval(drip, 1000);
    drip();
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('redaction helper', () => {
  it('hides user info and secret query values, keeps everything else', () => {
    expect(redactUrl(`https://fleet:${PASSWORD}@repo.example/releases`)).toBe('https://***@repo.example/releases');
    expect(redactUrl('https://repo.example/x?token=abc&channel=stable')).toBe('https://repo.example/x?token=***&channel=stable');
    expect(redactUrl('mqtts://user@broker:8883')).toBe('mqtts://***@broker:8883');
    expect(redactText(`GET http://a:${PASSWORD}@h/blobs/sha256/ab failed; then https://b:c@d/`)).toBe('GET http://***@h/blobs/sha256/ab failed; then https://***@d/');
    expect(redactUrl('http://127.0.0.1:8080/repo')).toBe('http://127.0.0.1:8080/repo');
  });
});

describe('a mirror trickling 1 byte/s with a correct Content-Length', () => {
  let repo: string;
  let mirror: Awaited<ReturnType<typeof slowMirror>>;
  let ops: { file: string; key: SigningKey };
  let registry: Registry;
  const BYTES = 20_000;

  beforeAll(async () => {
    repo = path.join(scratch, 'slow-repo');
    mkdirSync(repo, { recursive: true });
    ops = await opsKey();
    const v = await padded('2.0.0', BYTES);
    await publishRelease({ repo, channel: 'stable', bundles: [v.dir], keys: [ops.key], rollout: 100, expiresInMs: DAY, rollback: false });
    mirror = await slowMirror(repo, new Set([v.paddingSha]));
    registry = new Registry(mkdtempSync(path.join(os.tmpdir(), 'edgeloop-home-')));
  });
  afterAll(async () => {
    await mirror?.close();
    registry?.db.close();
  });

  const service = (over: Record<string, unknown>) =>
    SyncService.create({
      config: resolveConfig({ deviceId: 'slow-1', home: registry.home, sync: { repoUrl: mirror.url, trustedKeys: [`${ops.file}.pub`], ...over } }, {}, {}).sync!,
      deviceId: 'slow-1',
      home: registry.home,
      registry,
      host: offlineHost(registry),
    });

  it('is cut by sync.minBytesPerSecond: the round ends well inside its per-artifact bound, nothing installed', async () => {
    const cfg = { timeoutMs: 2000, minBytesPerSecond: 1024, retries: 1, retryBaseMs: 50, retryMaxMs: 100, roundTimeoutSeconds: 3600 };
    const s = await service(cfg);
    const started = Date.now();
    const report: RoundReport = await s.requestRound('manual', { unconditional: true }).done;
    const elapsed = Date.now() - started;
    await s.stop();
    const result = report.models.find((m) => m.model === MODEL)!;
    expect(result).toMatchObject({ outcome: 'failed', code: 'EDGELOOP_DOWNLOAD_FAILED', version: '2.0.0' });
    expect(result.message, result.message ?? "").toMatch(/slower than sync\.minBytesPerSecond/);
    // Bound: every attempt within timeoutMs + bytes / minBytesPerSecond, plus the back-off.
    const bound = (cfg.retries + 1) * (cfg.timeoutMs + (BYTES / cfg.minBytesPerSecond) * 1000) + cfg.retryMaxMs * cfg.retries;
    expect(elapsed).toBeLessThan(bound);
    expect(registry.listModels().find((m) => m.name === MODEL)).toBeUndefined();
  });

  it('is cut by sync.roundTimeoutSeconds when the rate floor lets it through, even across garbage collections', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const s = await service({ timeoutMs: 1500, minBytesPerSecond: 1, retries: 3, retryBaseMs: 50, retryMaxMs: 100, roundTimeoutSeconds: 2 });
    const started = Date.now();
    const done = s.requestRound('manual', { unconditional: true }).done;
    const collector = setInterval(gc, 200);
    const report = await done.finally(() => clearInterval(collector));
    const elapsed = Date.now() - started;
    await s.stop();
    const result = report.models.find((m) => m.model === MODEL)!;
    expect(result).toMatchObject({ outcome: 'failed', code: 'EDGELOOP_DOWNLOAD_FAILED' });
    expect(result.message).toMatch(/cancelled or ran out of time/);
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(2000 + 5000); // the round's bound plus a generous margin
  });
});

/** A copy of the shipped model whose input declares 2^40 rows: the session loads, no device can allocate it. */
function absurdBatch(bytes: Uint8Array): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  m.graph!.input![0].type!.tensorType!.shape!.dim![0] = onnx.TensorShapeProto.Dimension.create({ dimValue: 2 ** 40 });
  return onnx.ModelProto.encode(m).finish();
}

describe('fleet sync from nginx with a password in sync.repoUrl', () => {
  let nginx: Nginx;
  let daemon: Daemon;
  let repo: string;
  let ops: { file: string; key: SigningKey };
  let home: string;
  const lines: string[] = [];
  const events: string[] = [];
  let watcher: mqtt.MqttClient;

  beforeAll(async () => {
    repo = path.join(scratch, 'repo');
    mkdirSync(repo, { recursive: true });
    ops = await opsKey();
    nginx = await startNginx(repo);
    const shipped = path.join(scratch, 'shipped');
    await fs.cp(`models/${MODEL}`, path.join(shipped, MODEL), { recursive: true });
    home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-home-'));
    const repoUrl = nginx.url.replace('http://', `http://fleet:${PASSWORD}@`);
    const config = resolveConfig(
      {
        deviceId: 'leak-1',
        home,
        modelsDir: shipped,
        broker: { port: 0 },
        sync: { repoUrl, trustedKeys: [`${ops.file}.pub`], pollIntervalSeconds: 3600, timeoutMs: 2000, retries: 1, retryBaseMs: 50, retryMaxMs: 100 },
        registry: { trial: { minInferences: 10, windowSeconds: 60, maxP99Factor: 1000 } },
      },
      {},
      {},
    );
    // Every log line the daemon writes, at every level.
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    daemon = new Daemon({ config, log: pino({ level: 'trace' }, sink) });
    await daemon.start();
    watcher = await mqtt.connectAsync(daemon.brokerUrl, { protocolVersion: 4 });
    watcher.on('message', (_t, p) => events.push(p.toString()));
    await watcher.subscribeAsync(daemon.topics.events('sync'));
  });
  afterAll(async () => {
    await watcher?.endAsync();
    await daemon?.stop();
    await nginx?.stop();
  });

  const round = () => daemon.sync!.requestRound('manual', { unconditional: true }).done;
  const resultOf = (r: RoundReport) => r.models.find((m) => m.model === MODEL)!;

  it('installs with the credentials, then a failure names the URL only redacted', async () => {
    await publishRelease({ repo, channel: 'stable', bundles: [await makeVersion(`models/${MODEL}`, '1.1.0')], keys: [ops.key], rollout: 100, expiresInMs: DAY, rollback: false });
    expect(resultOf(await round())).toMatchObject({ outcome: 'installed', version: '1.1.0' });
    // A release whose padding blob is missing: a 404 whose message quotes the URL.
    const v = await padded('1.2.0', 3000);
    await publishRelease({ repo, channel: 'stable', bundles: [v.dir], keys: [ops.key], rollout: 100, expiresInMs: DAY, rollback: false });
    await fs.rm(path.join(repo, 'blobs/sha256', v.paddingSha));
    const failed = resultOf(await round());
    expect(failed).toMatchObject({ outcome: 'failed', code: 'EDGELOOP_DOWNLOAD_FAILED' });
    expect(failed.message).toContain('http://***@127.0.0.1');
    expect(daemon.sync!.status().repoUrl).toBe(nginx.url.replace('http://', 'http://***@'));
  });

  it('a release declaring an absurd allocation is EDGELOOP_MODEL_LOAD_FAILED, rejected, and not downloaded again', async () => {
    const dir = await makeVersion(`models/${MODEL}`, '1.3.0', absurdBatch);
    await publishRelease({ repo, channel: 'stable', bundles: [dir], keys: [ops.key], rollout: 100, expiresInMs: DAY, rollback: false });
    const first = resultOf(await round());
    expect(first).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_MODEL_LOAD_FAILED', version: '1.3.0' });
    expect(daemon.registry!.version(MODEL, '1.3.0').status).toBe('rejected');
    expect(daemon.registry!.summary(MODEL).serving!.version).toBe('1.1.0');
    const blobGets = (await nginx.accessLog()).filter((l) => l.path.startsWith('/blobs/')).length;
    const second = resultOf(await round());
    expect(second).toMatchObject({ outcome: 'rejected', code: 'EDGELOOP_VERSION_REJECTED' });
    expect((await nginx.accessLog()).filter((l) => l.path.startsWith('/blobs/')).length).toBe(blobGets);
  });

  it('no password in any event, log line, GET /sync, `sync status`, or database row', async () => {
    await expect.poll(() => events.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    const viaSocket = await new Promise<string>((resolve, reject) => {
      http
        .get({ socketPath: path.join(home, 'admin.sock'), path: '/sync' }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
    expect(JSON.parse(viaSocket)).toMatchObject({ enabled: true, repoUrl: expect.stringContaining('***@') });
    const cli = await exec(process.execPath, ['bin/edgeloop.js', 'sync', 'status', '--home', home, '--json']).then((r) => r.stdout);
    expect(JSON.parse(cli).repoUrl).toContain('***@');
    await daemon.stop();
    const db = new Database(path.join(home, 'edgeloop.db'), { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    const rows = tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all())).join('\n');
    db.close();
    const everything = { events: events.join('\n'), log: lines.join(''), sync: viaSocket, cli, rows };
    expect(lines.join('')).toContain('***@');
    for (const [where, text] of Object.entries(everything)) {
      expect(text.includes(PASSWORD), `${where} holds the password`).toBe(false);
      expect(text.includes('fleet:'), `${where} holds the user`).toBe(false);
    }
    expect(statSync(path.join(home, 'edgeloop.db')).size).toBeGreaterThan(0);
  });
});
