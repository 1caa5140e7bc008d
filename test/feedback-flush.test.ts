import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { loadServedModel } from '../src/daemon/load-models.js';
import type { ServedModel } from '../src/engine/index.js';
import { FeedbackService, FeedbackStore, type LabelledBatch } from '../src/feedback/index.js';
import { digitsRows } from './helpers/quality.js';

const config = resolveConfig({ home: 'unused' }, {}, {});
const log = pino({ level: 'silent' });
const digits = digitsRows();
let model: ServedModel;
beforeAll(async () => {
  model = await loadServedModel('models/digits', config, { ...config.serving }, log);
});
afterAll(async () => {
  await model?.dispose();
});

describe('feedback flush', () => {
  it('writes a large flush in chunks with the event loop served between them, tells listeners once, prunes once to its limit', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-fb-flush-'));
    const options = { ...config.feedback, maxRows: 900, reservoirPerClass: 10 };
    const service = FeedbackService.open(home, { options, limits: config.serving, models: (n) => (n === 'digits' ? model : undefined), log });
    const batches: LabelledBatch[] = [];
    service.onLabelled((_m, b) => batches.push(b));
    const n = 1000;
    const x = new Float32Array(n * 64);
    for (let i = 0; i < n; i++) x.set(digits.rows[i], i * 64);
    expect(service.addRows('digits', x, n, digits.labels.slice(0, n), 'cli')).toBe(n);

    // A second connection, read on every turn of the loop while the flush runs: the rows commit in
    // pieces, and the loop turns between them (one transaction would show 0, then 1000).
    const reader = FeedbackStore.open(home, { readonly: true });
    const seen = new Set<number>();
    let flushing = true;
    const watch = () => {
      if (!flushing) return;
      seen.add(reader.counts().find((c) => c.model === 'digits')?.inserted ?? 0);
      setImmediate(watch);
    };
    setImmediate(watch);
    await service.flush();
    flushing = false;
    expect([...seen].filter((k) => k > 0 && k < n).length).toBeGreaterThanOrEqual(2);

    // Listeners are told once per flush, with every row in order and its stored inputs and labels.
    expect(batches).toHaveLength(1);
    const [b] = batches;
    expect(b.rows).toBe(n);
    expect(b.ids.every((id, i) => i === 0 || id === b.ids[i - 1] + 1)).toBe(true);
    expect(Array.from(b.x.subarray(600 * 64, 601 * 64))).toEqual(digits.rows[600].map(Math.fround));
    expect(Array.from(b.y.subarray(0, 5))).toEqual(digits.labels.slice(0, 5));
    await service.close();

    try {
      const counts = reader.counts().find((c) => c.model === 'digits')!;
      expect(counts.inserted).toBe(n);
      expect(counts.rows - counts.reservoir).toBe(900); // the newest 900 kept, pruned after the last chunk
      expect(counts.reservoir).toBeGreaterThan(0);
      expect(counts.reservoir).toBeLessThanOrEqual(10 * 10);
      expect(reader.latestId('digits')).toBe(b.ids[n - 1]);
    } finally {
      reader.close();
    }
  });
});
