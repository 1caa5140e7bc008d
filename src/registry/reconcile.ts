import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Registry } from './registry.js';

export interface ReconcileReport {
  /** Temp or orphan folders removed (crashed installs, interrupted gc). */
  removed: string[];
  /** Recorded versions whose folder is gone, now marked rejected. */
  missing: string[];
}

/**
 * Bring disk and database back in line after a crash: folders no row points at are removed
 * (an install that crashed before it was recorded, a gc that crashed after it was), and rows
 * whose folder is gone are rejected. Run at start-up, before anything is loaded.
 */
export async function reconcile(registry: Registry): Promise<ReconcileReport> {
  const report: ReconcileReport = { removed: [], missing: [] };
  const known = new Set<string>();
  for (const m of registry.listModels()) for (const v of registry.versions(m.name)) known.add(`${m.name}/${v.version}`);
  const models = await fs.readdir(registry.modelsRoot).catch(() => [] as string[]);
  for (const model of models) {
    const dir = path.join(registry.modelsRoot, model);
    const entries = await fs.readdir(dir).catch(() => [] as string[]);
    for (const entry of entries) {
      if (known.has(`${model}/${entry}`)) continue;
      await fs.rm(path.join(dir, entry), { recursive: true, force: true });
      report.removed.push(`${model}/${entry}`);
    }
  }
  for (const m of registry.listModels()) {
    for (const v of registry.versions(m.name)) {
      if (v.status === 'rejected') continue;
      const exists = await fs.stat(registry.versionDir(m.name, v.version)).catch(() => undefined);
      if (!exists) {
        registry.reject(m.name, v.version, 'version folder missing at start-up');
        report.missing.push(`${m.name}/${v.version}`);
      }
    }
  }
  return report;
}
