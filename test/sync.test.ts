import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHANNEL_TYPE,
  canonicalJson,
  compareVersions,
  downloadBlob,
  fetchDocument,
  generateSigningKey,
  inRollout,
  loadSigningKey,
  loadTrustedKeys,
  parseDuration,
  publishRelease,
  readChannel,
  signMetadata,
  verifyMetadata,
  type ChannelSigned,
  type HttpOptions,
  type SigningKey,
  type TrustedKey,
} from '../src/sync/index.js';
import { makeVersion } from './helpers/bundles.js';

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), `edgeloop-${p}-`));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function keyPair(dir: string, name: string): Promise<{ signing: SigningKey; trusted: TrustedKey[]; pub: string }> {
  const k = generateSigningKey();
  writeFileSync(path.join(dir, name), k.privatePem, { mode: 0o600 });
  writeFileSync(path.join(dir, `${name}.pub`), k.publicPem);
  return { signing: await loadSigningKey(path.join(dir, name)), trusted: await loadTrustedKeys([path.join(dir, `${name}.pub`)]), pub: k.publicPem };
}

const signed = (over: Partial<ChannelSigned> = {}): ChannelSigned => ({
  type: CHANNEL_TYPE,
  channel: 'stable',
  serial: 5,
  expires: new Date(Date.now() + 3_600_000).toISOString(),
  models: { digits: { version: '1.1.0', bundle: { sha256: 'a'.repeat(64), bytes: 900 }, rollout: 100, rollback: false } },
  ...over,
});

describe('canonical JSON', () => {
  it('sorts keys at every level, drops whitespace, keeps arrays in order (RFC 8785 for these values)', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'é"' } })).toBe('{"a":{"c":"é\\"","d":[3,{"y":null,"z":true}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/NaN/);
  });
});

describe('keys and signed channel metadata', () => {
  const dir = tmp('keys');
  let ops: Awaited<ReturnType<typeof keyPair>>;
  let next: Awaited<ReturnType<typeof keyPair>>;
  let rogue: Awaited<ReturnType<typeof keyPair>>;
  beforeAll(async () => {
    ops = await keyPair(dir, 'ops.key');
    next = await keyPair(dir, 'next.key');
    rogue = await keyPair(dir, 'rogue.key');
  });
  const state = (trusted: TrustedKey[], last?: { serial: number; canonical: string }) => ({ channel: 'stable', trusted, now: new Date(), last });

  it('key ids are the sha256 of the public key; inline PEM and files load alike; other key types are refused', async () => {
    const inline = await loadTrustedKeys([ops.pub, path.join(dir, 'ops.key.pub')]);
    expect(inline).toHaveLength(1);
    expect(inline[0].keyid).toBe(ops.signing.keyid);
    expect(ops.signing.keyid).toMatch(/^[0-9a-f]{64}$/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await expect(loadTrustedKeys([ec])).rejects.toMatchObject({ code: 'EDGELOOP_KEY_INVALID' });
    await expect(loadSigningKey(path.join(dir, 'missing.key'))).rejects.toMatchObject({ code: 'EDGELOOP_KEY_INVALID' });
  });

  it('accepts metadata signed by a trusted key, and during a rotation by either key', () => {
    const doc = JSON.stringify(signMetadata(signed(), [ops.signing, next.signing]));
    expect(verifyMetadata(doc, state(ops.trusted)).metadata.signed.serial).toBe(5);
    expect(verifyMetadata(doc, state(next.trusted)).unchanged).toBe(false);
  });

  it('refuses altered content, an unknown key and a garbled signature', () => {
    const doc = signMetadata(signed(), [ops.signing]);
    const altered = structuredClone(doc);
    altered.signed.models.digits.version = '9.9.9';
    expect(() => verifyMetadata(JSON.stringify(altered), state(ops.trusted))).toThrow(expect.objectContaining({ code: 'EDGELOOP_SIGNATURE_INVALID', message: expect.stringMatching(/does not verify/) }));
    const byRogue = JSON.stringify(signMetadata(signed(), [rogue.signing]));
    expect(() => verifyMetadata(byRogue, state(ops.trusted))).toThrow(expect.objectContaining({ code: 'EDGELOOP_SIGNATURE_INVALID', message: expect.stringMatching(/not trusted/) }));
    const garbled = { ...doc, signatures: [{ keyid: ops.signing.keyid, sig: 'AAAA' }] };
    expect(() => verifyMetadata(JSON.stringify(garbled), state(ops.trusted))).toThrow(expect.objectContaining({ code: 'EDGELOOP_SIGNATURE_INVALID' }));
    expect(() => verifyMetadata('{"signed":{}}', state(ops.trusted))).toThrow(expect.objectContaining({ code: 'EDGELOOP_METADATA_INVALID' }));
  });

  it('refuses expired metadata, older serials, a reused serial with other content, and another channel', () => {
    const old = JSON.stringify(signMetadata(signed({ expires: new Date(Date.now() - 1000).toISOString() }), [ops.signing]));
    expect(() => verifyMetadata(old, state(ops.trusted))).toThrow(expect.objectContaining({ code: 'EDGELOOP_METADATA_EXPIRED' }));
    const doc5 = JSON.stringify(signMetadata(signed(), [ops.signing]));
    const v5 = verifyMetadata(doc5, state(ops.trusted));
    const last = { serial: 6, canonical: 'x' };
    expect(() => verifyMetadata(doc5, state(ops.trusted, last))).toThrow(expect.objectContaining({ code: 'EDGELOOP_METADATA_REPLAYED' }));
    expect(() => verifyMetadata(JSON.stringify(signMetadata(signed({ serial: 6 }), [ops.signing])), state(ops.trusted, last))).toThrow(expect.objectContaining({ code: 'EDGELOOP_METADATA_REPLAYED' }));
    expect(verifyMetadata(doc5, state(ops.trusted, { serial: 5, canonical: v5.canonical })).unchanged).toBe(true);
    expect(() => verifyMetadata(JSON.stringify(signMetadata(signed({ channel: 'beta' }), [ops.signing])), state(ops.trusted))).toThrow(expect.objectContaining({ code: 'EDGELOOP_METADATA_INVALID' }));
  });
});

describe('staged rollout and version order', () => {
  it('a 20% rollout selects 20% ± 3% of 1,000 device ids, and raising it keeps the devices already in', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `device-${i.toString(36)}-${(i * 7919) % 1000}`);
    const in20 = ids.filter((id) => inRollout(20, id, 'stable', 'digits'));
    expect(in20.length).toBeGreaterThanOrEqual(170);
    expect(in20.length).toBeLessThanOrEqual(230);
    const in50 = new Set(ids.filter((id) => inRollout(50, id, 'stable', 'digits')));
    expect(in20.every((id) => in50.has(id))).toBe(true);
    expect(ids.every((id) => inRollout(100, id, 'stable', 'digits') && !inRollout(0, id, 'stable', 'digits'))).toBe(true);
    // Another model picks other devices.
    const other = ids.filter((id) => inRollout(20, id, 'stable', 'digits-fp32'));
    expect(other.filter((id) => in20.includes(id)).length).toBeLessThan(in20.length * 0.5);
  });

  it('orders versions like semver, numbers as numbers', () => {
    expect(compareVersions('1.10.0', '1.9.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0-rc.1')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0-rc.2', '1.0.0-rc.10')).toBeLessThan(0);
    expect(compareVersions('2.0.0+build5', '2.0.0')).toBe(0);
    expect(compareVersions('1.0.0', '1.1.0')).toBeLessThan(0);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(() => parseDuration('soon')).toThrow(/duration/);
  });
});

describe('publish', () => {
  let repo: string;
  let key: SigningKey;
  let v110: string;
  let v100: string;
  beforeAll(async () => {
    const dir = tmp('publish');
    repo = path.join(dir, 'repo');
    key = (await keyPair(dir, 'ops.key')).signing;
    v110 = await makeVersion('models/digits-fp32', '1.1.0');
    v100 = await makeVersion('models/digits-fp32', '1.0.5');
  });

  it('writes content-addressed blobs and signed metadata whose serial grows and which keeps other models', async () => {
    const a = await publishRelease({ repo, channel: 'stable', bundles: [v110], keys: [key], rollout: 20, expiresInMs: 86_400_000, rollback: false });
    expect(a.metadata.signed.serial).toBe(1);
    const entry = a.metadata.signed.models['digits-fp32'];
    expect(entry).toMatchObject({ version: '1.1.0', rollout: 20, rollback: false });
    const manifest = await fs.readFile(path.join(repo, 'blobs/sha256', entry.bundle.sha256));
    expect(sha(manifest)).toBe(entry.bundle.sha256);
    for (const art of JSON.parse(manifest.toString()).artifacts) expect(sha(await fs.readFile(path.join(repo, 'blobs/sha256', art.sha256)))).toBe(art.sha256);
    const mtime1 = statSync(a.file).mtimeMs;
    const other = await makeVersion('models/digits', '1.2.0');
    const b = await publishRelease({ repo, channel: 'stable', bundles: [other], keys: [key], rollout: 100, expiresInMs: 86_400_000, rollback: false });
    expect(b.metadata.signed.serial).toBe(2);
    expect(Object.keys(b.metadata.signed.models).sort()).toEqual(['digits', 'digits-fp32']);
    expect(b.blobs.reused).toBeGreaterThanOrEqual(0);
    expect(statSync(b.file).mtimeMs).toBeGreaterThan(mtime1); // a new ETag even within the same second
    expect((await readChannel(repo, 'stable'))!.signed.serial).toBe(2);
  });

  it('refuses a downgrade unless it is an ordered rollback, and a version reused with other content', async () => {
    await expect(publishRelease({ repo, channel: 'stable', bundles: [v100], keys: [key], rollout: 100, expiresInMs: 1000, rollback: false })).rejects.toMatchObject({ code: 'EDGELOOP_UPDATE_REJECTED' });
    const r = await publishRelease({ repo, channel: 'stable', bundles: [v100], keys: [key], rollout: 100, expiresInMs: 86_400_000, rollback: true });
    expect(r.metadata.signed.models['digits-fp32']).toMatchObject({ version: '1.0.5', rollback: true });
    expect(r.metadata.signed.serial).toBe(3);
    const changed = await makeVersion('models/digits-fp32', '1.0.5', (b) => Uint8Array.from(b));
    await fs.appendFile(path.join(changed, 'bundle.json'), ' ');
    await expect(publishRelease({ repo, channel: 'stable', bundles: [changed], keys: [key], rollout: 100, expiresInMs: 1000, rollback: true })).rejects.toMatchObject({ code: 'EDGELOOP_UPDATE_REJECTED' });
  });
});

describe('http client', () => {
  let server: http.Server;
  let base: string;
  let hits = 0;
  const body = Buffer.alloc(50_000, 7);
  const opts = (): HttpOptions => ({ timeoutMs: 500, retries: 2, retryBaseMs: 20, retryMaxMs: 50, signal: new AbortController().signal });
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits++;
      if (req.url === '/endless') {
        // No Content-Length: chunked, and it never ends by itself.
        res.writeHead(200);
        const timer = setInterval(() => res.write(Buffer.alloc(16_384, 1)), 1);
        res.on('close', () => clearInterval(timer));
      } else if (req.url === '/flaky') {
        if (hits % 2 === 1) {
          res.writeHead(503).end();
          return;
        }
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } else if (req.url === '/silent') {
        // Headers, then nothing: the idle timeout must end it.
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 10));
      } else if (req.url === '/meta') {
        if (req.headers['if-none-match'] === '"v1"') res.writeHead(304).end();
        else res.writeHead(200, { etag: '"v1"', 'content-type': 'application/json' }).end('{"a":1}');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('stops reading an endless response at the declared size and deletes the partial file', async () => {
    const part = path.join(tmp('dl'), 'x.part');
    const started = Date.now();
    await expect(downloadBlob(`${base}/endless`, part, { sha256: 'b'.repeat(64), bytes: 100_000 }, opts())).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_TAMPERED', message: expect.stringMatching(/more than/) });
    expect(existsSync(part)).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('retries a 503 with back-off, then verifies the hash', async () => {
    const part = path.join(tmp('dl'), 'y.part');
    hits = 0;
    await downloadBlob(`${base}/flaky`, part, { sha256: sha(body), bytes: body.length }, opts());
    expect(sha(await fs.readFile(part))).toBe(sha(body));
    expect(hits).toBe(2);
    await expect(downloadBlob(`${base}/flaky`, `${part}2`, { sha256: 'c'.repeat(64), bytes: body.length }, { ...opts(), retries: 3 })).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_TAMPERED' });
  });

  it('gives up on an idle connection after the retries, and on a 404 at once', async () => {
    const retries: number[] = [];
    await expect(
      downloadBlob(`${base}/silent`, path.join(tmp('dl'), 'z.part'), { sha256: sha(body), bytes: body.length }, { ...opts(), onRetry: (i) => retries.push(i.attempt) }),
    ).rejects.toMatchObject({ code: 'EDGELOOP_DOWNLOAD_FAILED', message: expect.stringMatching(/idle/) });
    expect(retries).toEqual([1, 2]);
    hits = 0;
    await expect(downloadBlob(`${base}/nothing`, path.join(tmp('dl'), 'n.part'), { sha256: sha(body), bytes: 1 }, opts())).rejects.toMatchObject({ code: 'EDGELOOP_DOWNLOAD_FAILED', message: expect.stringMatching(/404/) });
    expect(hits).toBe(1);
  });

  it('fetches a document conditionally with its ETag', async () => {
    const first = await fetchDocument(`${base}/meta`, { ...opts(), maxBytes: 1000 });
    expect(first).toEqual({ notModified: false, text: '{"a":1}', etag: '"v1"' });
    expect(await fetchDocument(`${base}/meta`, { ...opts(), maxBytes: 1000, etag: '"v1"' })).toEqual({ notModified: true });
    await expect(fetchDocument(`${base}/endless`, { ...opts(), maxBytes: 1000 })).rejects.toMatchObject({ code: 'EDGELOOP_METADATA_INVALID' });
  });
});
