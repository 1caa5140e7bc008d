import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EdgeloopError } from '../errors.js';
import { sha256 } from '../util/fs-atomic.js';
import { MANIFEST_FILE, describeIssues, manifestSchema, type Manifest } from './manifest.js';

/** A bundle read from disk with every artifact checked against its manifest. */
export interface VerifiedBundle {
  dir: string;
  manifest: Manifest;
  /** Verified artifact bytes by relative path; engines load from these, never re-read the disk. */
  files: Map<string, Uint8Array>;
}

/** A model source: a verified bundle, or a bare model.onnx whose signature the engine derives. */
export type ModelSource =
  | { kind: 'bundle'; bundle: VerifiedBundle }
  | { kind: 'bare-onnx'; file: string; bytes: Uint8Array };

/** Parse and validate a manifest object. */
export function parseManifest(raw: unknown, where: string): Manifest {
  const result = manifestSchema.safeParse(raw);
  if (!result.success) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: ${describeIssues(result.error)}`);
  }
  const m = result.data;
  if (!m.artifacts.some((a) => a.path === m.entry)) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: 'entry' ${m.entry} is not listed in 'artifacts'`);
  }
  if (m.inputs.length === 0 && m.task !== 'embedding') {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: a ${m.task} model needs at least one input in 'inputs'`);
  }
  if (m.task === 'classification' && m.labels && m.outputs[0].shape.at(-1)! > 0 && m.labels.length !== m.outputs[0].shape.at(-1)) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: 'labels' has ${m.labels.length} names but output '${m.outputs[0].name}' has ${m.outputs[0].shape.at(-1)} classes`);
  }
  return m;
}

/** Read bundle.json only (no artifact check): cheap, for listings. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${dir}: cannot read ${MANIFEST_FILE} (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseManifest(raw, file);
}

/** Read a bundle folder and verify every artifact's size and sha256. */
export async function readBundle(dir: string): Promise<VerifiedBundle> {
  const manifest = await readManifest(dir);
  const files = new Map<string, Uint8Array>();
  for (const artifact of manifest.artifacts) {
    const file = path.join(dir, artifact.path);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch (err) {
      throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `${manifest.name}@${manifest.version}: artifact ${artifact.path} is missing (${(err as Error).message})`);
    }
    if (bytes.length !== artifact.bytes) {
      throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `${manifest.name}@${manifest.version}: artifact ${artifact.path} has ${bytes.length} bytes, manifest says ${artifact.bytes}`);
    }
    const hash = sha256(bytes);
    if (hash !== artifact.sha256) {
      throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `${manifest.name}@${manifest.version}: artifact ${artifact.path} has sha256 ${hash.slice(0, 12)}…, manifest says ${artifact.sha256.slice(0, 12)}…`);
    }
    files.set(artifact.path, bytes);
  }
  return { dir, manifest, files };
}

/** Open a bundle folder or a bare .onnx file. */
export async function openModelSource(p: string): Promise<ModelSource> {
  const stat = await fs.stat(p).catch(() => undefined);
  if (!stat) throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${p}: no such bundle folder or model file`);
  if (stat.isDirectory()) return { kind: 'bundle', bundle: await readBundle(p) };
  if (p.endsWith('.onnx')) return { kind: 'bare-onnx', file: p, bytes: await fs.readFile(p) };
  throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${p}: expected a bundle folder or a .onnx file`);
}
