import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { asEdgeloopError } from '../errors.js';
import type { Registry } from './registry.js';

/**
 * Install the bundles shipped with the software (the models folder) that the registry does not
 * have yet. A model's first version becomes active at once; a newer shipped version of a model
 * that already serves goes on trial, unless the model is pinned.
 */
export async function importShipped(registry: Registry, modelsDir: string, log?: Logger): Promise<string[]> {
  const imported: string[] = [];
  const entries = (await fs.readdir(modelsDir).catch(() => [] as string[])).sort();
  for (const entry of entries) {
    const p = path.join(modelsDir, entry);
    const stat = await fs.stat(p).catch(() => undefined);
    const isBundle = stat?.isDirectory() && (await fs.stat(path.join(p, 'bundle.json')).catch(() => undefined));
    if (!isBundle && !(stat?.isFile() && entry.endsWith('.onnx'))) continue;
    try {
      const before = new Set(registry.listModels().flatMap((m) => registry.versions(m.name).map((v) => `${v.model}@${v.version}`)));
      const row = await registry.install(p, { actor: 'daemon', source: 'shipped', reason: `shipped in ${entry}` });
      if (before.has(`${row.model}@${row.version}`)) continue;
      imported.push(`${row.model}@${row.version}`);
      const summary = registry.summary(row.model);
      if (!summary.serving) await registry.activate(row.model, row.version, { actor: 'daemon', trial: false, reason: 'first version of a shipped model' });
      else if (!summary.pinned) await registry.activate(row.model, row.version, { actor: 'daemon', reason: 'newer shipped version' });
    } catch (err) {
      const e = asEdgeloopError(err);
      log?.error({ path: p, code: e.code, err: e.message }, 'shipped model not imported');
    }
  }
  return imported;
}
