import { sign as edSign, verify as edVerify } from 'node:crypto';
import { z } from '../util/zod.js';
import { EdgeloopError } from '../errors.js';
import { canonicalJson } from './canonical-json.js';
import type { SigningKey, TrustedKey } from './keys.js';

/** The `type` of channel metadata this code writes and reads. */
export const CHANNEL_TYPE = 'edgeloop-channel/1';

/** Largest channel metadata document a device reads (it is never read past this). */
export const MAX_METADATA_BYTES = 1024 * 1024;

/** Largest bundle.json a device downloads. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex sha256');

/** One model's release in a channel. */
export const releaseEntrySchema = z
  .object({
    version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/),
    /** The bundle's bundle.json blob: it lists every artifact's sha256 and size, so it names the whole bundle. */
    bundle: z.object({ sha256: sha256Hex, bytes: z.number().int().min(1) }).strict(),
    /** Percentage of devices that take part (stable hash of device id + channel + model). */
    rollout: z.number().min(0).max(100),
    /** An operator-ordered rollback: allowed to go to an older version than the one serving. */
    rollback: z.boolean(),
  })
  .strict();
export type ReleaseEntry = z.infer<typeof releaseEntrySchema>;

/** The signed part of channel metadata. */
export const channelSignedSchema = z
  .object({
    type: z.literal(CHANNEL_TYPE),
    channel: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    /** Grows with every publication; devices refuse anything not newer than what they accepted. */
    serial: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** ISO 8601; devices refuse metadata past it (freeze attack). */
    expires: z.string().datetime({ offset: true }),
    published: z.string().datetime({ offset: true }).optional(),
    models: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/), releaseEntrySchema),
  })
  .strict();
export type ChannelSigned = z.infer<typeof channelSignedSchema>;

export interface Signature {
  keyid: string;
  /** base64 Ed25519 signature over canonicalJson(signed). */
  sig: string;
}

/** Channel metadata as stored at channels/<channel>.json. */
export interface ChannelMetadata {
  signed: ChannelSigned;
  signatures: Signature[];
}

const envelopeSchema = z.object({
  signed: z.record(z.string(), z.unknown()),
  signatures: z.array(z.object({ keyid: z.string(), sig: z.string() })).min(1).max(16),
});

/** Sign metadata with one or more keys (several during a key rotation). */
export function signMetadata(signed: ChannelSigned, keys: readonly SigningKey[]): ChannelMetadata {
  const bytes = Buffer.from(canonicalJson(signed));
  return { signed, signatures: keys.map((k) => ({ keyid: k.keyid, sig: edSign(null, bytes, k.key).toString('base64') })) };
}

/** What the device knows about a channel before checking new metadata. */
export interface TrustState {
  channel: string;
  trusted: readonly TrustedKey[];
  now: Date;
  /** Serial and canonical signed text of the last accepted metadata, if any. */
  last?: { serial: number; canonical: string };
}

export interface VerifiedMetadata {
  metadata: ChannelMetadata;
  /** canonicalJson(signed), kept to recognise the same document later. */
  canonical: string;
  /** Same serial and content as the last accepted metadata. */
  unchanged: boolean;
}

/**
 * Check channel metadata the TUF way, in this order: a signature by a trusted key (an unknown
 * key id or a signature that does not verify is refused) -> the signed content's schema and
 * channel -> serial not older than the last accepted (rollback and replay attacks; the same
 * serial must carry the same content) -> not expired (freeze attack).
 */
export function verifyMetadata(text: string, state: TrustState): VerifiedMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `channel metadata is not JSON (${(err as Error).message})`);
  }
  const envelope = envelopeSchema.safeParse(raw);
  if (!envelope.success) throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `channel metadata needs {signed, signatures}: ${envelope.error.issues.map((i) => `'${i.path.join('.')}' ${i.message}`).join('; ')}`);
  const { signed, signatures } = envelope.data;
  let canonical: string;
  try {
    canonical = canonicalJson(signed);
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `channel metadata cannot be canonicalised (${(err as Error).message})`);
  }
  checkSignatures(Buffer.from(canonical), signatures, state.trusted);

  const parsed = channelSignedSchema.safeParse(signed);
  if (!parsed.success) throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `signed channel metadata: ${parsed.error.issues.map((i) => `'${i.path.join('.')}' ${i.message}`).join('; ')}`);
  const m = parsed.data;
  if (m.channel !== state.channel) throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `metadata is for channel '${m.channel}', this device follows '${state.channel}'`);
  let unchanged = false;
  if (state.last) {
    if (m.serial < state.last.serial) {
      throw new EdgeloopError('EDGELOOP_METADATA_REPLAYED', `channel '${m.channel}' serial ${m.serial} is older than serial ${state.last.serial} accepted earlier (replayed metadata)`);
    }
    if (m.serial === state.last.serial) {
      if (canonical !== state.last.canonical) throw new EdgeloopError('EDGELOOP_METADATA_REPLAYED', `channel '${m.channel}' serial ${m.serial} was accepted earlier with different content`);
      unchanged = true;
    }
  }
  if (Date.parse(m.expires) <= state.now.getTime()) {
    throw new EdgeloopError('EDGELOOP_METADATA_EXPIRED', `channel '${m.channel}' metadata (serial ${m.serial}) expired at ${m.expires}`);
  }
  return { metadata: { signed: m, signatures }, canonical, unchanged };
}

function checkSignatures(bytes: Buffer, signatures: readonly Signature[], trusted: readonly TrustedKey[]): void {
  const byId = new Map(trusted.map((k) => [k.keyid, k]));
  const failures: string[] = [];
  for (const s of signatures) {
    const key = byId.get(s.keyid);
    if (!key) {
      failures.push(`key ${s.keyid.slice(0, 12)}… is not trusted`);
      continue;
    }
    let ok = false;
    try {
      ok = edVerify(null, bytes, key.key, Buffer.from(s.sig, 'base64'));
    } catch {
      ok = false;
    }
    if (ok) return;
    failures.push(`signature by key ${s.keyid.slice(0, 12)}… does not verify`);
  }
  throw new EdgeloopError('EDGELOOP_SIGNATURE_INVALID', `channel metadata is not signed by a trusted key: ${failures.join('; ')}`);
}

/** Parse durations such as 7d, 12h, 30m, 45s, 500ms into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m) throw new EdgeloopError('EDGELOOP_USAGE', `'${text}' is not a duration (examples: 7d, 12h, 30m, 45s)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'ms'];
  return Math.round(Number(m[1]) * unit);
}
