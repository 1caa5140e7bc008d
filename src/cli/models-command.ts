import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readBundle, readManifest } from '../bundle/index.js';
import { asEdgeloopError } from '../errors.js';
import { fail, formatBytes, table } from './output.js';

interface ModelRow {
  name: string;
  version: string;
  runtime: string;
  task: string;
  quantization: string;
  bytes: number;
  verified: boolean;
  path: string;
  problem?: string;
}

/** Every bundle in a models folder, with its hashes checked. */
export async function listModels(dir: string): Promise<ModelRow[]> {
  const rows: ModelRow[] = [];
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  for (const entry of entries.sort()) {
    const p = path.join(dir, entry);
    const stat = await fs.stat(p).catch(() => undefined);
    if (stat?.isFile() && entry.endsWith('.onnx')) {
      rows.push({ name: entry.replace(/\.onnx$/, ''), version: '-', runtime: 'onnx', task: '?', quantization: '?', bytes: stat.size, verified: false, path: p, problem: 'bare model: no manifest' });
      continue;
    }
    if (!stat?.isDirectory()) continue;
    try {
      const manifest = await readManifest(p);
      let problem: string | undefined;
      await readBundle(p).catch((err) => (problem = asEdgeloopError(err).message));
      rows.push({
        name: manifest.name,
        version: manifest.version,
        runtime: manifest.runtime,
        task: manifest.task,
        quantization: manifest.quantization,
        bytes: manifest.artifacts.reduce((n, a) => n + a.bytes, 0),
        verified: !problem,
        path: p,
        problem,
      });
    } catch {
      continue; // not a bundle folder
    }
  }
  return rows;
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('model bundles on this device');
  models
    .command('list')
    .description('list the model bundles in the models folder, with their hashes verified')
    .option('--models <dir>', 'models folder', 'models')
    .option('--json', 'machine-readable output')
    .action(async (o: { models: string; json?: boolean }) => {
      try {
        const rows = await listModels(o.models);
        if (o.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (rows.length === 0) {
          process.stdout.write(`no model bundles in ${o.models}\n`);
          return;
        }
        process.stdout.write(
          table(
            ['model', 'version', 'runtime', 'task', 'weights', 'size', 'verified'],
            rows.map((r) => [r.name, r.version, r.runtime, r.task, r.quantization, formatBytes(r.bytes), r.verified ? 'yes' : `NO: ${r.problem}`]),
          ),
        );
        if (rows.some((r) => !r.verified && r.version !== '-')) process.exitCode = 5;
      } catch (err) {
        fail(err);
      }
    });
}
