import { setImmediate as turn } from 'node:timers/promises';
import type { LabelledBatch, LabelledRows, RowsQuery } from './types.js';

/** Rows per query: a few milliseconds of SQLite and copying, well under a serving deadline. */
export const PAGE_ROWS = 128;

/**
 * LabelledRows.rows, newest first, read a page at a time with a turn of the event loop between
 * pages. One query of thousands of rows (a fine-tune's training set, a gate's holdout) holds the
 * daemon's only thread for tens of milliseconds, and every request in flight waits that long.
 */
export async function rowsPaged(store: LabelledRows, model: string, query: Omit<RowsQuery, 'order' | 'beforeId'>, pageRows = PAGE_ROWS): Promise<LabelledBatch> {
  const limit = query.limit ?? Infinity;
  const pages: LabelledBatch[] = [];
  let got = 0;
  let beforeId: number | undefined;
  while (got < limit) {
    const asked = Math.min(pageRows, limit - got);
    const page = store.rows(model, { ...query, beforeId, limit: asked });
    if (page.rows === 0 || (pages.length > 0 && page.features !== pages[0].features)) break;
    pages.push(page);
    got += page.rows;
    beforeId = Math.min(...page.ids);
    if (page.rows < asked) break; // the last page
    await turn();
  }
  return concatBatches(pages);
}

/** Batches of the same width, one after the other. */
export function concatBatches(parts: readonly LabelledBatch[]): LabelledBatch {
  if (parts.length === 1) return parts[0];
  const features = parts[0]?.features ?? 0;
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const out: LabelledBatch = { x: new Float32Array(rows * features), y: new Float32Array(rows), predicted: new Float32Array(rows), rows, features, ids: [], at: [], versions: [] };
  let r = 0;
  for (const p of parts) {
    out.x.set(p.x, r * features);
    out.y.set(p.y, r);
    out.predicted.set(p.predicted, r);
    out.ids.push(...p.ids);
    out.at.push(...p.at);
    out.versions.push(...p.versions);
    r += p.rows;
  }
  return out;
}
