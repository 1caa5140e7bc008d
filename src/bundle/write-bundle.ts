import { EdgeloopError } from '../errors.js';
import { sha256, writeDirAtomic } from '../util/fs-atomic.js';
import { BUNDLE_FORMAT, MANIFEST_FILE, type Manifest, type ManifestInput } from './manifest.js';
import { parseManifest } from './read-bundle.js';

/** Everything of a manifest except what writeBundle computes (format, artifacts). */
export type BundleDraft = Omit<ManifestInput, 'format' | 'artifacts'>;

/**
 * Write a bundle folder atomically: artifacts are hashed, the manifest is validated, and the
 * folder appears complete or not at all.
 */
export async function writeBundle(
  dir: string,
  draft: BundleDraft,
  artifacts: ReadonlyMap<string, Uint8Array>,
  opts: { overwrite?: boolean } = {},
): Promise<Manifest> {
  if (artifacts.has(MANIFEST_FILE)) throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${MANIFEST_FILE} is written by writeBundle, not passed as an artifact`);
  const manifest = parseManifest(
    {
      format: BUNDLE_FORMAT,
      createdAt: new Date().toISOString(),
      ...draft,
      artifacts: [...artifacts].map(([path, data]) => ({ path, sha256: sha256(data), bytes: data.byteLength })),
    },
    dir,
  );
  const files = new Map(artifacts);
  files.set(MANIFEST_FILE, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  await writeDirAtomic(dir, files, opts);
  return manifest;
}
