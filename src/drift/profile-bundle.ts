import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE, openModelSource, rowSize, writeBundle, type Manifest, type ReferenceProfile } from '../bundle/index.js';
import type { EngineOptions } from '../engine/index.js';
import { EdgeloopError } from '../errors.js';
import { sha256 } from '../util/fs-atomic.js';
import { buildDriftProfile, type ProfileOptions } from './profile-builder.js';
import { readReferenceCsv, runModelOnTable } from './profile-data.js';

export interface ProfileBundleOptions extends ProfileOptions {
  /** Label column of the data (left out of the features; kept for the anchor sample). */
  label?: string;
  /** Where to write the bundle: default the bundle folder itself, or for a bare .onnx a folder beside it named after the model. */
  out?: string;
  /** Name and version of the bundle written (default: the bundle's; for a bare .onnx its file name and hash prefix, as `models add` names it). */
  name?: string;
  version?: string;
  engineOptions?: EngineOptions;
}

export interface ProfileBundleResult {
  dir: string;
  manifest: Manifest;
  profile: ReferenceProfile;
  /** True when a bare .onnx was wrapped into a new bundle. */
  wrapped: boolean;
  rows: number;
  dropped: number;
}

/**
 * `edgeloop profile`: read the data, run the model on it as the daemon would, build the
 * reference profile and write the bundle with it (atomically, hashes recomputed). A bare
 * .onnx has nowhere to keep a profile, so it is wrapped into a bundle folder (manifest derived
 * from the ONNX session as `models add` does); a sidecar file would be lost on install.
 */
export async function profileBundle(modelPath: string, dataFile: string, opts: ProfileBundleOptions = {}): Promise<ProfileBundleResult> {
  const source = await openModelSource(modelPath);
  const probe = source.kind === 'bundle' ? source.bundle.manifest : undefined;
  if (probe && probe.inputs.length === 0) throw noInputs(modelPath);
  const width = probe ? rowSize(probe.inputs[0]) : undefined;
  const table = await readReferenceCsv(dataFile, width ?? (await bareWidth(source, opts.engineOptions)), opts.label);
  const { manifest, data } = await runModelOnTable(source, table, opts.engineOptions);
  const profile = buildDriftProfile(data, opts);
  profile.source = { data: path.basename(dataFile), sha256: table.sha256, rows: table.rows, droppedRows: table.dropped, builtAt: new Date().toISOString(), builtBy: 'edgeloop profile' };

  const { format: _format, artifacts: _artifacts, ...draft } = manifest;
  let dir: string;
  let files: Map<string, Uint8Array>;
  let version = opts.version ?? manifest.version;
  if (source.kind === 'bundle') {
    dir = path.resolve(opts.out ?? source.bundle.dir);
    files = new Map(source.bundle.files);
  } else {
    version = opts.version ?? sha256(source.bytes).slice(0, 12);
    dir = path.resolve(opts.out ?? path.join(path.dirname(source.file), opts.name ?? manifest.name));
    files = new Map([['model.onnx', source.bytes]]);
  }
  if (existsSync(dir) && !existsSync(path.join(dir, MANIFEST_FILE)) && (await fs.readdir(dir)).length > 0) {
    throw new EdgeloopError('EDGELOOP_USAGE', `${dir} exists and is not a bundle folder; pass --out with a new or bundle folder`);
  }
  const written = await writeBundle(dir, { ...draft, name: opts.name ?? manifest.name, version, reference: profile }, files, { overwrite: true });
  return { dir, manifest: written, profile, wrapped: source.kind === 'bare-onnx', rows: table.rows, dropped: table.dropped };
}

/** Input width of a bare .onnx: load it once to read its signature. */
async function bareWidth(source: Awaited<ReturnType<typeof openModelSource>>, engineOptions?: EngineOptions): Promise<number> {
  const { loadModel } = await import('../engine/index.js');
  const { manifest, engine } = await loadModel(source, engineOptions ?? { onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 }, tfjs: { backends: ['cpu'] } });
  await engine.dispose();
  if (manifest.inputs.length === 0) throw noInputs(source.kind === 'bare-onnx' ? source.file : manifest.name);
  return rowSize(manifest.inputs[0]);
}

/** A drift profile describes input rows: a model that takes no inputs has none. */
function noInputs(model: string): EdgeloopError {
  return new EdgeloopError('EDGELOOP_USAGE', `${model} takes no inputs: there are no input rows to profile`);
}
