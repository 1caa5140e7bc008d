import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { EdgeloopError } from '../errors.js';

/** A public key a device trusts, with its id (the hex sha256 of its SPKI DER encoding, as TUF key ids). */
export interface TrustedKey {
  keyid: string;
  key: KeyObject;
}

/** A private signing key with the id of its public half. */
export interface SigningKey {
  keyid: string;
  key: KeyObject;
}

/** The key id of an Ed25519 public key: hex sha256 of its DER SubjectPublicKeyInfo. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** A new Ed25519 key pair as PEM (PKCS#8 private, SPKI public) and its key id. */
export function generateSigningKey(): { privatePem: string; publicPem: string; keyid: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyid: keyIdOf(publicKey),
  };
}

const isPem = (s: string) => s.includes('-----BEGIN ');

async function readPem(source: string, what: string): Promise<string> {
  if (isPem(source)) return source;
  try {
    return await fs.readFile(source, 'utf8');
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_KEY_INVALID', `${what} ${source} cannot be read (${(err as Error).message})`);
  }
}

/** Load a private signing key from a PEM file. */
export async function loadSigningKey(file: string): Promise<SigningKey> {
  const pem = await readPem(file, 'signing key');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_KEY_INVALID', `signing key ${file} is not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new EdgeloopError('EDGELOOP_KEY_INVALID', `signing key ${file} is ${key.asymmetricKeyType}, not ed25519`);
  return { keyid: keyIdOf(createPublicKey(key)), key };
}

/** Load trusted public keys: each a PEM file path or inline PEM. Duplicates collapse to one. */
export async function loadTrustedKeys(sources: readonly string[]): Promise<TrustedKey[]> {
  const keys = new Map<string, TrustedKey>();
  for (const [i, source] of sources.entries()) {
    const label = isPem(source) ? `sync.trustedKeys[${i}] (inline)` : source;
    const pem = await readPem(source, 'trusted key');
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw new EdgeloopError('EDGELOOP_KEY_INVALID', `trusted key ${label} is not a PEM public key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new EdgeloopError('EDGELOOP_KEY_INVALID', `trusted key ${label} is ${key.asymmetricKeyType}, not ed25519`);
    const keyid = keyIdOf(key);
    keys.set(keyid, { keyid, key });
  }
  return [...keys.values()];
}
