import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE, readBundle } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { sha256, writeFileAtomic } from '../util/fs-atomic.js';
import mqtt from '../util/mqtt.js';
import type { SigningKey } from './keys.js';
import { CHANNEL_TYPE, signMetadata, type ChannelMetadata, type ChannelSigned, type ReleaseEntry } from './metadata.js';
import { compareVersions } from './policy.js';
import { releaseTopic } from './sync-service.js';

export interface PublishOptions {
  /** Folder of the static release repository (what nginx, S3 or a CDN serves). */
  repo: string;
  channel: string;
  /** Bundle folders to release; each replaces its model's entry, other models keep theirs. */
  bundles: readonly string[];
  /** Signing keys: one, or the old and the new one during a key rotation. */
  keys: readonly SigningKey[];
  /** Percentage of devices that take part (0 pauses a release). */
  rollout: number;
  /** How long devices accept this metadata. */
  expiresInMs: number;
  /** An operator-ordered rollback: the versions may be older than the ones released before. */
  rollback: boolean;
  now?: Date;
}

export interface PublishResult {
  file: string;
  metadata: ChannelMetadata;
  previousSerial: number | null;
  blobs: { written: number; reused: number };
}

export const channelPath = (repo: string, channel: string) => path.join(repo, 'channels', `${channel}.json`);
const blobPath = (repo: string, hash: string) => path.join(repo, 'blobs', 'sha256', hash);

/** Read a repository's current channel metadata (unverified: it is the operator's own file). */
export async function readChannel(repo: string, channel: string): Promise<ChannelMetadata | null> {
  const file = channelPath(repo, channel);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const doc = JSON.parse(text) as ChannelMetadata;
    if (!Number.isInteger(doc?.signed?.serial) || typeof doc.signed.models !== 'object') throw new Error('no signed.serial / signed.models');
    return doc;
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `${file} cannot be read as channel metadata (${(err as Error).message}); fix or remove it`);
  }
}

/** Write a blob under its sha256 unless an intact copy is there. */
async function putBlob(repo: string, data: Uint8Array): Promise<'written' | 'reused'> {
  const hash = sha256(data);
  const file = blobPath(repo, hash);
  const existing = await fs.readFile(file).catch(() => undefined);
  if (existing && sha256(existing) === hash) return 'reused';
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, data);
  return 'written';
}

/**
 * Publish bundles to a static release repository: content-addressed blobs first (bundle.json
 * and every artifact under blobs/sha256/<hash>), then the channel metadata with the next
 * serial, signed and written atomically, so a device never sees metadata naming a missing blob.
 */
export async function publishRelease(o: PublishOptions): Promise<PublishResult> {
  if (o.keys.length === 0) throw new EdgeloopError('EDGELOOP_USAGE', "'--key' is required: the metadata must be signed");
  if (o.bundles.length === 0) throw new EdgeloopError('EDGELOOP_USAGE', 'name at least one bundle folder to publish');
  if (!(o.rollout >= 0 && o.rollout <= 100)) throw new EdgeloopError('EDGELOOP_USAGE', `'--rollout' must be between 0 and 100, got ${o.rollout}`);
  if (!(o.expiresInMs > 0)) throw new EdgeloopError('EDGELOOP_USAGE', `'--expires' must be a positive duration`);
  const now = o.now ?? new Date();
  const previous = await readChannel(o.repo, o.channel);
  const models: Record<string, ReleaseEntry> = { ...(previous?.signed.models ?? {}) };
  const blobs = { written: 0, reused: 0 };
  const seen = new Set<string>();
  for (const dir of o.bundles) {
    const bundle = await readBundle(dir); // every artifact verified against its manifest
    const { name, version } = bundle.manifest;
    if (seen.has(name)) throw new EdgeloopError('EDGELOOP_USAGE', `two bundles of model '${name}' in one publication`);
    seen.add(name);
    const manifestBytes = await fs.readFile(path.join(dir, MANIFEST_FILE));
    const hash = sha256(manifestBytes);
    const before = previous?.signed.models[name];
    if (before && compareVersions(version, before.version) < 0 && !o.rollback) {
      throw new EdgeloopError('EDGELOOP_UPDATE_REJECTED', `${name}@${version} is older than ${before.version}, released before; pass --rollback to order a rollback`);
    }
    if (before && before.version === version && before.bundle.sha256 !== hash) {
      throw new EdgeloopError('EDGELOOP_UPDATE_REJECTED', `${name}@${version} was released before with other content; give the new bundle a new version`);
    }
    for (const data of [...bundle.files.values(), manifestBytes]) blobs[await putBlob(o.repo, data)]++;
    models[name] = { version, bundle: { sha256: hash, bytes: manifestBytes.byteLength }, rollout: o.rollout, rollback: o.rollback };
  }
  const signed: ChannelSigned = {
    type: CHANNEL_TYPE,
    channel: o.channel,
    serial: (previous?.signed.serial ?? 0) + 1,
    expires: new Date(now.getTime() + o.expiresInMs).toISOString(),
    published: now.toISOString(),
    models,
  };
  const metadata = signMetadata(signed, o.keys);
  const file = channelPath(o.repo, o.channel);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const prevMtime = (await fs.stat(file).catch(() => undefined))?.mtimeMs;
  await writeFileAtomic(file, JSON.stringify(metadata, null, 2) + '\n');
  // Servers derive ETags from mtime (whole seconds) and size: make sure this file's differs.
  if (prevMtime !== undefined) {
    const mtime = Math.max(Date.now(), Math.floor(prevMtime / 1000) * 1000 + 1000) / 1000;
    await fs.utimes(file, mtime, mtime);
  }
  return { file, metadata, previousSerial: previous?.signed.serial ?? null, blobs };
}

/** The retained notice devices of a channel react to (a hint only: devices verify the metadata). */
export interface ReleaseNotice {
  type: 'edgeloop-release-notice/1';
  channel: string;
  serial: number;
  /** Where the channel metadata is, when the operator said (devices use their configured repository). */
  url?: string;
  models: Record<string, string>;
}

/** Publish the retained release notice on edgeloop/fleet/{channel}/release (QoS 1). */
export async function announceRelease(brokerUrl: string, notice: ReleaseNotice, opts: { timeoutMs?: number } = {}): Promise<string> {
  const topic = releaseTopic(notice.channel);
  const client = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: opts.timeoutMs ?? 10_000 }).catch((err: Error) => {
    throw new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `cannot connect to ${brokerUrl.replace(/\/\/[^@/]*@/, '//***@')}: ${err.message}`);
  });
  try {
    await client.publishAsync(topic, JSON.stringify(notice), { qos: 1, retain: true });
  } finally {
    await client.endAsync().catch(() => undefined);
  }
  return topic;
}
