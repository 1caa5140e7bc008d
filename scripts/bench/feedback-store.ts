/**
 * Investigation: CPU per labelled row of the feedback store's flush (write + prune), in this
 * process, at the default limits (maxRows 50,000, reservoirPerClass 100), as the store fills
 * and then stays at its limit (every flush prunes). Flushes of 800 rows: 10% feedback at 8,000
 * requests/s and the default 1 s flush interval.
 *
 *   npx tsx scripts/bench/feedback-store.ts [--rows 80000] [--batch 800]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FeedbackStore } from '../../src/feedback/index.js';

const { values } = parseArgs({ options: { rows: { type: 'string' }, batch: { type: 'string' } } });
const total = Number(values.rows ?? 80_000);
const batch = Number(values.batch ?? 800);
const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-fbstore-'));
const store = FeedbackStore.open(home, { synchronous: 'NORMAL' }); // as the daemon opens it
const limits = { maxRows: 50_000, reservoirPerClass: 100, holdoutShare: 0.2 };
const tasks = new Map([['digits', 'classification']]);
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
// CPU per stage; the first 5 flushes of each stage are left out (JIT, the first pages, the first prunes).
const stages = { filling: { write: 0, prune: 0, rows: 0, flushes: 0 }, 'at its limit (50,000 + reservoir)': { write: 0, prune: 0, rows: 0, flushes: 0 } };
let k = 0;
while (k < total) {
  const rows = Array.from({ length: batch }, () => {
    const i = k++;
    return { model: 'digits', version: '1.0.0', inputs: new Float32Array(64).fill(i % 16), label: i % 10, predicted: (i * 7) % 10, predictionId: `b1-${i.toString(36)}`, source: 'mqtt' as const, at: Date.now() };
  });
  const c0 = cpu();
  store.write(rows, tasks, limits, false);
  const c1 = cpu();
  store.pruneModels(tasks, limits);
  const c2 = cpu();
  const s = k <= limits.maxRows ? stages.filling : stages['at its limit (50,000 + reservoir)'];
  if (++s.flushes > 5) ((s.write += c1 - c0), (s.prune += c2 - c1), (s.rows += batch));
}
console.log('| store | rows written | write µs/row | prune µs/row | flush µs/row |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, s] of Object.entries(stages)) {
  if (s.rows === 0) continue;
  console.log(`| ${name} | ${s.rows.toLocaleString('en-US')} | ${(s.write / s.rows).toFixed(1)} | ${(s.prune / s.rows).toFixed(1)} | ${((s.write + s.prune) / s.rows).toFixed(1)} |`);
}
store.close();
rmSync(home, { recursive: true, force: true });
