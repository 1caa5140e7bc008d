import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { readBundle, writeBundle } from '../../src/bundle/index.js';

const { onnx } = onnxProto;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-versions-'));

/**
 * A models folder holding copies of only the named bundles from models/: a daemon started on
 * it loads and warms just those, not every shipped bundle (a test that restarts daemons often
 * pays that at each start).
 */
export function shippedModels(...names: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-shipped-'));
  for (const name of names) cpSync(path.join('models', name), path.join(dir, name), { recursive: true });
  return dir;
}

/** A copy of a shipped bundle under another version (optionally with its model file transformed). */
export async function makeVersion(src: string, version: string, transform?: (bytes: Uint8Array) => Uint8Array): Promise<string> {
  const { manifest, files } = await readBundle(src);
  if (transform) files.set(manifest.entry, transform(files.get(manifest.entry)!));
  const dir = path.join(scratch, `${manifest.name}-${version}`);
  const { format: _f, artifacts: _a, ...draft } = manifest;
  await writeBundle(dir, { ...draft, version }, files, { overwrite: true });
  return dir;
}

/**
 * A release exported with a fixed batch size of 1: it loads and warms up fine, then fails on
 * every batch of more than one row. A realistic broken release for trial tests.
 */
export function fixBatchToOne(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  model.graph!.input![0].type!.tensorType!.shape!.dim![0] = onnx.TensorShapeProto.Dimension.create({ dimValue: 1 });
  return onnx.ModelProto.encode(model).finish();
}
