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
  it('writes a large flush in chunks with the event loop served between them, every row once, pruned once to its limit', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-fb-flush-'));
    const options = { ...config.feedback, maxRows: 900, reservoirPerClass: 10 };
    const service = FeedbackService.open(home, { options, limits: config.serving, models: (n) => (n === 'digits' ? model : undefined), log });
    const batches: LabelledBatch[] = [];
    // Each chunk's listener call queues an immediate: it has run by the next chunk only if the flush yielded to the loop.
    const servedBetween: boolean[] = [];
    let served = false;
    service.onLabelled((_m, b) => {
      if (batches.length > 0) servedBetween.push(served);
      batches.push(b);
      served = false;
      setImmediate(() => (served = true));
    });
    const n = 1000;
    const x = new Float32Array(n * 64);
    for (let i = 0; i < n; i++) x.set(digits.rows[i], i * 64);
    expect(service.addRows('digits', x, n, digits.labels.slice(0, n), 'cli')).toBe(n);

    await service.flush();
    expect(batches.length).toBeGreaterThan(1);
    expect(servedBetween.every(Boolean)).toBe(true);
    expect(batches.reduce((s, b) => s + b.rows, 0)).toBe(n);
    const ids = batches.flatMap((b) => b.ids);
    expect(new Set(ids).size).toBe(n);
    // Listeners get the rows in order, with their stored inputs and labels.
    expect(Array.from(batches[1].x.subarray(0, 64))).toEqual(digits.rows[batches[0].rows].map(Math.fround));
    expect(batches[1].y[0]).toBe(digits.labels[batches[0].rows]);
    await service.close();

    const store = FeedbackStore.open(home, { readonly: true });
    try {
      const counts = store.counts().find((c) => c.model === 'digits')!;
      expect(counts.inserted).toBe(n);
      expect(counts.rows - counts.reservoir).toBe(900); // the newest 900 kept, pruned after the last chunk
      expect(counts.reservoir).toBeGreaterThan(0);
      expect(counts.reservoir).toBeLessThanOrEqual(10 * 10);
      expect(store.latestId('digits')).toBe(Math.max(...ids));
    } finally {
      store.close();
    }
  });
});
