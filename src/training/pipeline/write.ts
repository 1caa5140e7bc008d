import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeBundle, type Manifest } from '../../bundle/index.js';
import { EdgeloopError } from '../../errors.js';
import type { BundleTarget, PackagedBundle } from './package.js';

/** Refuse before any work when a target folder exists (without overwrite) or two targets share one. */
export async function checkTargets(targets: readonly BundleTarget[], overwrite: boolean): Promise<void> {
  const seen = new Set<string>();
  for (const t of targets) {
    const dir = path.resolve(t.dir);
    if (seen.has(dir)) throw new EdgeloopError('EDGELOOP_USAGE', `two export variants would write ${t.dir}`);
    seen.add(dir);
    const exists = await fs.stat(t.dir).then(() => true, () => false);
    if (exists && !overwrite) throw new EdgeloopError('EDGELOOP_USAGE', `${t.dir} already exists; choose another --out or pass --overwrite`);
  }
}

/**
 * Write every packaged bundle (each atomically). If one fails, the folders this call already
 * created are removed, so a failed run leaves no partial set of bundles behind.
 */
export async function writeBundles(bundles: readonly Pick<PackagedBundle, 'target' | 'draft' | 'files'>[], overwrite: boolean): Promise<Manifest[]> {
  const created: string[] = [];
  const manifests: Manifest[] = [];
  try {
    for (const b of bundles) {
      const existed = await fs.stat(b.target.dir).then(() => true, () => false);
      manifests.push(await writeBundle(b.target.dir, b.draft, b.files, { overwrite }));
      if (!existed) created.push(b.target.dir);
    }
  } catch (err) {
    await Promise.all(created.map((d) => fs.rm(d, { recursive: true, force: true })));
    throw err;
  }
  return manifests;
}
