import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BUNDLE_FORMAT, MANIFEST_FILE, openModelSource, parseManifest, type Manifest } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { loadModel } from '../engine/index.js';
import { sha256, writeDirAtomic } from '../util/fs-atomic.js';

/** A bundle ready to be copied into the registry: its manifest, its files, and its hash. */
export interface InstallableBundle {
  manifest: Manifest;
  /** Every file of the bundle, bundle.json included, verified. */
  files: Map<string, Uint8Array>;
  /** sha256 of bundle.json: it lists every artifact's hash, so it names the whole bundle. */
  sha256: string;
}

/**
 * Read and verify a bundle folder, or wrap a bare model.onnx into a bundle whose manifest comes
 * from ONNX Runtime's session metadata (version: `version` or the file's hash prefix).
 */
export async function prepareInstall(source: string, opts: { name?: string; version?: string } = {}): Promise<InstallableBundle> {
  const opened = await openModelSource(source);
  if (opened.kind === 'bundle') {
    const files = new Map(opened.bundle.files);
    const manifestBytes = await fs.readFile(path.join(opened.bundle.dir, MANIFEST_FILE));
    files.set(MANIFEST_FILE, manifestBytes);
    return { manifest: opened.bundle.manifest, files, sha256: sha256(manifestBytes) };
  }
  const { manifest: derived, engine } = await loadModel(opened, {
    onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
    tfjs: { backends: ['cpu'] },
  });
  await engine.dispose();
  const modelHash = sha256(opened.bytes);
  const manifest = parseManifest(
    {
      ...derived,
      format: BUNDLE_FORMAT,
      name: opts.name ?? derived.name,
      version: opts.version ?? modelHash.slice(0, 12),
      artifacts: [{ path: 'model.onnx', sha256: modelHash, bytes: opened.bytes.byteLength }],
      createdAt: new Date().toISOString(),
    },
    source,
  );
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  return { manifest, files: new Map([['model.onnx', opened.bytes], [MANIFEST_FILE, manifestBytes]]), sha256: sha256(manifestBytes) };
}

/** Copy a bundle into its immutable version folder: complete or absent, never half-written. */
export async function copyIntoVersionDir(dir: string, bundle: InstallableBundle): Promise<void> {
  try {
    await writeDirAtomic(dir, bundle.files);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new EdgeloopError('EDGELOOP_DISK_FULL', `no space left to install ${bundle.manifest.name}@${bundle.manifest.version}; nothing was changed`, { cause: err });
    }
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      // A folder left by an install that crashed before it was recorded: replace it.
      await fs.rm(dir, { recursive: true, force: true });
      await writeDirAtomic(dir, bundle.files);
      return;
    }
    throw err;
  }
}
