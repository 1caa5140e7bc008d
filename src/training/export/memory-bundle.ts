import { BUNDLE_FORMAT, parseManifest, type BundleDraft, type VerifiedBundle } from '../../bundle/index.js';
import { sha256 } from '../../util/fs-atomic.js';

/**
 * A bundle that exists only in memory: the manifest writeBundle would write, validated, with
 * its files. Lets a variant be loaded by the real engines and evaluated before anything is
 * written to disk.
 */
export function memoryBundle(draft: BundleDraft, files: ReadonlyMap<string, Uint8Array>, where = '(memory)'): VerifiedBundle {
  const manifest = parseManifest(
    { format: BUNDLE_FORMAT, ...draft, artifacts: [...files].map(([path, data]) => ({ path, sha256: sha256(data), bytes: data.byteLength })) },
    where,
  );
  return { dir: where, manifest, files: new Map(files) };
}
