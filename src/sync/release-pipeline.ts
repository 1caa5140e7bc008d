import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../bundle/index.js';
import { EdgeloopError, asEdgeloopError, type ErrorCode } from '../errors.js';
import type { Registry, VersionRow } from '../registry/index.js';
import { downloadBlob, type HttpOptions } from './http-client.js';
import { MAX_MANIFEST_BYTES, type ReleaseEntry } from './metadata.js';
import { compareVersions, inRollout } from './policy.js';
import type { ModelOutcome, ModelSyncResult, SyncHost, SyncProgress } from './types.js';

/** Everything one model's release needs. */
export interface ReleaseContext {
  model: string;
  entry: ReleaseEntry;
  channel: string;
  serial: number;
  deviceId: string;
  repoUrl: string;
  registry: Registry;
  host: SyncHost;
  http: HttpOptions;
  /** <home>/sync/downloads (partial and verified blobs) and <home>/sync/staging (bundles being assembled). */
  downloadsDir: string;
  stagingDir: string;
  maxBundleBytes: number;
  reserveBytes: number;
  progress: (p: Partial<SyncProgress>) => void;
  log?: Logger;
}

/** A step's verdict: stop here with this outcome, or go on. */
type Stop = { outcome: ModelOutcome; code?: ErrorCode; message?: string };

interface Work {
  serving: VersionRow | null;
  pinned: boolean;
  installed?: VersionRow;
  manifest?: Manifest;
  manifestFile?: string;
  /** Verified blob files by sha256. */
  blobs: Map<string, string>;
  bundleDir?: string;
  totalBytes: number;
  /** Keep partial downloads for the next round (the failure was transient). */
  keepParts: boolean;
}

const REJECTING: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'EDGELOOP_BUNDLE_TAMPERED',
  'EDGELOOP_BUNDLE_INVALID',
  'EDGELOOP_UPDATE_REJECTED',
  'EDGELOOP_UPDATE_TOO_LARGE',
  'EDGELOOP_VERSION_REJECTED',
  'EDGELOOP_VERSION_EXISTS',
  // The host records the refusal and marks the version rejected: not downloaded again.
  'EDGELOOP_GATE_FAILED',
  'EDGELOOP_MODEL_LOAD_FAILED',
  'EDGELOOP_ENGINE_UNAVAILABLE',
]);

const blobUrl = (ctx: ReleaseContext, sha: string) => `${ctx.repoUrl}/blobs/sha256/${sha}`;
const partFile = (ctx: ReleaseContext, sha: string) => path.join(ctx.downloadsDir, `${sha}.part`);

/**
 * One model's release, as named steps (each may stop the pipeline with an outcome):
 * decide -> fetchManifest -> checkSize -> checkSpace -> download -> assemble -> install -> activate.
 * Nothing is installed before every byte is verified; a stop or a failure leaves what serves untouched.
 */
export const RELEASE_STEPS: readonly [string, (ctx: ReleaseContext, w: Work) => Promise<Stop | void>][] = [
  ['decide', decide],
  ['fetchManifest', fetchManifest],
  ['checkSize', checkSize],
  ['checkSpace', checkSpace],
  ['download', download],
  ['assemble', assemble],
  ['install', install],
  ['activate', activate],
];

/** Run the steps for one model; never throws: every ending is a result. */
export async function syncModel(ctx: ReleaseContext): Promise<ModelSyncResult> {
  const work: Work = { serving: null, pinned: false, blobs: new Map(), totalBytes: 0, keepParts: false };
  let stop: Stop | undefined;
  try {
    for (const [name, step] of RELEASE_STEPS) {
      const verdict = await step(ctx, work);
      ctx.log?.debug({ model: ctx.model, version: ctx.entry.version, step: name, stop: verdict?.outcome }, 'sync step');
      if (verdict) {
        stop = verdict;
        break;
      }
    }
  } catch (err) {
    const e = asEdgeloopError(err);
    if (e.code === 'EDGELOOP_DOWNLOAD_FAILED') work.keepParts = true;
    stop = { outcome: e.code === 'EDGELOOP_MODEL_PINNED' ? 'pinned' : REJECTING.has(e.code) ? 'rejected' : 'failed', code: e.code, message: e.message };
  } finally {
    await cleanUp(ctx, work);
  }
  const s = stop ?? { outcome: 'failed', code: 'EDGELOOP_INTERNAL', message: 'the release pipeline ended without an outcome' };
  return {
    model: ctx.model,
    channel: ctx.channel,
    serial: ctx.serial,
    version: ctx.entry.version,
    from: work.serving?.version ?? null,
    outcome: s.outcome,
    code: s.code ?? null,
    message: s.message ?? null,
    at: new Date().toISOString(),
  };
}

async function decide(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  const { model, entry } = ctx;
  const summary = ctx.registry.listModels().find((m) => m.name === model);
  w.serving = summary?.serving ?? null;
  w.pinned = summary?.pinned ?? false;
  if (w.serving?.version === entry.version) return { outcome: 'up-to-date' };
  if (!inRollout(entry.rollout, ctx.deviceId, ctx.channel, model)) {
    return { outcome: 'not-in-rollout', message: `this device is outside the ${entry.rollout}% rollout of ${model}@${entry.version}` };
  }
  if (w.pinned) return { outcome: 'pinned', code: 'EDGELOOP_MODEL_PINNED', message: `${model} is pinned on this device; ${entry.version} not installed` };
  if (w.serving && compareVersions(entry.version, w.serving.version) < 0 && !entry.rollback) {
    return {
      outcome: 'rejected',
      code: 'EDGELOOP_UPDATE_REJECTED',
      message: `${model}@${entry.version} is older than ${w.serving.version}, which serves, and the release is not marked as a rollback`,
    };
  }
  w.installed = summary ? ctx.registry.versions(model).find((v) => v.version === entry.version) : undefined;
  if (w.installed?.status === 'rejected') {
    return { outcome: 'rejected', code: 'EDGELOOP_VERSION_REJECTED', message: `${model}@${entry.version} was rejected on this device earlier (${w.installed.statusReason ?? 'no reason recorded'})` };
  }
  if (w.installed && w.installed.sha256 !== entry.bundle.sha256) {
    return { outcome: 'rejected', code: 'EDGELOOP_UPDATE_REJECTED', message: `${model}@${entry.version} is installed here with other content than the release lists` };
  }
}

async function fetchManifest(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  if (w.installed) return; // already verified and installed: nothing to download
  const { sha256, bytes } = ctx.entry.bundle;
  const limit = Math.min(MAX_MANIFEST_BYTES, ctx.maxBundleBytes);
  if (bytes > limit) throw new EdgeloopError('EDGELOOP_UPDATE_TOO_LARGE', `${ctx.model}@${ctx.entry.version}: bundle.json is declared with ${bytes} bytes, more than the ${limit} accepted`);
  ctx.progress({ phase: 'manifest', model: ctx.model, version: ctx.entry.version, bytesDone: 0, bytesTotal: bytes });
  const file = partFile(ctx, sha256);
  await downloadBlob(blobUrl(ctx, sha256), file, { sha256, bytes }, ctx.http);
  w.blobs.set(sha256, file);
  w.manifestFile = file;
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${ctx.model}@${ctx.entry.version}: bundle.json is not JSON (${(err as Error).message})`);
  }
  const manifest = parseManifest(raw, `${ctx.model}@${ctx.entry.version} bundle.json`);
  // Mix-and-match: a correctly hashed bundle of another model or version must not pass as this one.
  if (manifest.name !== ctx.model || manifest.version !== ctx.entry.version) {
    throw new EdgeloopError(
      'EDGELOOP_UPDATE_REJECTED',
      `the release lists ${ctx.model}@${ctx.entry.version}, but its bundle.json is ${manifest.name}@${manifest.version} (mix-and-match)`,
    );
  }
  w.manifest = manifest;
}

async function checkSize(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  if (!w.manifest) return;
  w.totalBytes = ctx.entry.bundle.bytes + uniqueArtifacts(w.manifest).reduce((n, a) => n + a.bytes, 0);
  if (w.totalBytes > ctx.maxBundleBytes) {
    throw new EdgeloopError('EDGELOOP_UPDATE_TOO_LARGE', `${ctx.model}@${ctx.entry.version} is ${w.totalBytes} bytes, more than sync.maxBundleBytes (${ctx.maxBundleBytes})`);
  }
}

async function checkSpace(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  if (!w.manifest) return;
  const stats = await fs.statfs(ctx.downloadsDir);
  const free = stats.bavail * stats.bsize;
  // The download, then the installed copy, and the reserve left over.
  const needed = 2 * w.totalBytes + ctx.reserveBytes;
  if (free < needed) {
    throw new EdgeloopError('EDGELOOP_DISK_FULL', `${ctx.model}@${ctx.entry.version} needs ${needed} bytes free (download, install and sync.reserveBytes), ${free} are`);
  }
}

async function download(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  if (!w.manifest) return;
  let done = ctx.entry.bundle.bytes;
  ctx.progress({ phase: 'download', bytesDone: done, bytesTotal: w.totalBytes });
  for (const artifact of uniqueArtifacts(w.manifest)) {
    if (w.blobs.has(artifact.sha256)) continue;
    const file = partFile(ctx, artifact.sha256);
    const before = done;
    const { resumedFrom } = await downloadBlob(blobUrl(ctx, artifact.sha256), file, artifact, {
      ...ctx.http,
      onProgress: (n) => {
        done += n;
        ctx.progress({ bytesDone: done });
      },
    });
    if (resumedFrom > 0) ctx.log?.info({ model: ctx.model, artifact: artifact.path, resumedFrom }, 'download resumed');
    done = before + artifact.bytes;
    ctx.progress({ bytesDone: done });
    w.blobs.set(artifact.sha256, file);
  }
}

async function assemble(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  if (!w.manifest) return;
  const dir = path.join(ctx.stagingDir, `${ctx.model}-${ctx.entry.version}-${randomBytes(4).toString('hex')}`);
  w.bundleDir = dir;
  await fs.mkdir(dir, { recursive: true });
  await fs.copyFile(w.manifestFile!, path.join(dir, MANIFEST_FILE));
  const placed = new Map<string, string>();
  for (const artifact of w.manifest.artifacts) {
    const target = path.join(dir, artifact.path);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const first = placed.get(artifact.sha256);
    // Same filesystem: a rename, not a copy; a second path with the same content is copied.
    if (first) await fs.copyFile(first, target);
    else if (artifact.sha256 === ctx.entry.bundle.sha256) await fs.copyFile(w.blobs.get(artifact.sha256)!, target);
    else await fs.rename(w.blobs.get(artifact.sha256)!, target);
    placed.set(artifact.sha256, target);
  }
}

async function install(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  if (!w.bundleDir) return;
  ctx.progress({ phase: 'install' });
  const row = await ctx.host.serialize(() =>
    ctx.registry.install(w.bundleDir!, { actor: 'fleet', source: 'fleet', reason: `fleet channel ${ctx.channel} serial ${ctx.serial}` }),
  );
  if (row.sha256 !== ctx.entry.bundle.sha256) throw new EdgeloopError('EDGELOOP_UPDATE_REJECTED', `${ctx.model}@${ctx.entry.version} installed with a bundle hash other than the release lists`);
  w.installed = row;
}

async function activate(ctx: ReleaseContext, w: Work): Promise<Stop | void> {
  ctx.progress({ phase: 'activate' });
  const { model, entry } = ctx;
  const reason = `fleet channel ${ctx.channel} serial ${ctx.serial}${entry.rollback ? ' (operator rollback)' : ''}`;
  const downgrade = w.serving !== null && compareVersions(entry.version, w.serving.version) < 0;
  try {
    if (downgrade) {
      // An operator rollback: the version left is marked rejected, the known-good one serves at once.
      await ctx.host.rollback(model, { actor: 'fleet', to: entry.version, reason });
      return { outcome: 'rolled-back', message: `${w.serving!.version} -> ${entry.version} (operator rollback)` };
    }
    await ctx.host.activate(model, entry.version, { actor: 'fleet', reason });
    return { outcome: 'installed', message: `${w.serving?.version ?? 'nothing'} -> ${entry.version}, on trial` };
  } catch (err) {
    const e = asEdgeloopError(err);
    // A version that cannot load here will not load next round either.
    if (e.code === 'EDGELOOP_MODEL_LOAD_FAILED' || e.code === 'EDGELOOP_ENGINE_UNAVAILABLE' || e.code === 'EDGELOOP_BUNDLE_TAMPERED') {
      await ctx.host.serialize(async () => ctx.registry.reject(model, entry.version, `fleet release failed to load: ${e.message}`, 'fleet')).catch(() => undefined);
    }
    throw e;
  }
}

function uniqueArtifacts(m: Manifest): Manifest['artifacts'] {
  const seen = new Map<string, Manifest['artifacts'][number]>();
  for (const a of m.artifacts) if (!seen.has(a.sha256)) seen.set(a.sha256, a);
  return [...seen.values()];
}

async function cleanUp(ctx: ReleaseContext, w: Work): Promise<void> {
  if (w.bundleDir) await fs.rm(w.bundleDir, { recursive: true, force: true }).catch(() => undefined);
  if (w.keepParts) return; // resumed next round
  for (const file of w.blobs.values()) await fs.rm(file, { force: true }).catch(() => undefined);
  if (w.manifest) for (const a of w.manifest.artifacts) await fs.rm(partFile(ctx, a.sha256), { force: true }).catch(() => undefined);
  await fs.rm(partFile(ctx, ctx.entry.bundle.sha256), { force: true }).catch(() => undefined);
}
