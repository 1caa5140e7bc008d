/**
 * Cost of drift monitoring on the serving hot path: DriftMonitor.observe() per row for the
 * 64-pixel digits profile (64 inputs + 4 PCA components + confidence), at batch sizes 1, 8
 * and 32, raw and standardised inputs; and the off-path cost of scoring and writing one window.
 * Compare the per-row figure with the serving cost per request (BENCHMARKS.md) to predict the
 * throughput cost of turning drift on.
 *
 *   npx tsx scripts/bench/drift.ts [--ms 1000]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildDriftProfile, DriftMonitor, DriftStore, driftOptions, type PredictionLike } from '../../src/drift/index.js';
import { parseCsv } from '../../src/training/data/index.js';
import { fmt, isMain, table } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');

function loadDigits(): { x: Float32Array; rows: number; features: string[]; labels: number[] } {
  const t = parseCsv(readFileSync(path.join(root, 'data/digits.csv'), 'utf8'), 'digits.csv');
  const features = t.header.slice(0, 64);
  const x = new Float32Array(t.rows.length * 64);
  t.rows.forEach((r, i) => r.slice(0, 64).forEach((v, j) => (x[i * 64 + j] = Number(v))));
  return { x, rows: t.rows.length, features, labels: t.rows.map((r) => Number(r[64])) };
}

export async function runDriftBench(measureMs = 1000): Promise<string> {
  const d = loadDigits();
  // Predictions as a confident classifier would give them (the bench measures the monitor, not the model).
  const predictions: PredictionLike[] = d.labels.map((l, i) => ({ label: String(l), index: l, confidence: 0.9 + 0.1 * ((i * 7919) % 100) / 100 }));
  const outputs = new Float32Array(d.rows * 10);
  predictions.forEach((p, i) => (outputs[i * 10 + (p.index as number)] = p.confidence as number));
  const profile = buildDriftProfile({ features: d.features, x: d.x, rows: d.rows, task: 'classification', predictions, outputs, labels: Array.from({ length: 10 }, (_, i) => String(i)) });
  const mean = d.features.map((_, j) => profile.features[j].mean);
  const std = d.features.map((_, j) => profile.features[j].std || 1);
  const standardized = Float32Array.from(d.x, (v, i) => Math.fround((v - Math.fround(mean[i % 64])) * Math.fround(1 / std[i % 64])));

  const rows: (string | number)[][] = [];
  const perRow: Record<string, number> = {};
  // CPU time of this (single) thread: steadier than wall time on a busy machine.
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  for (const variant of ['raw', 'standardized', 'raw, no projection'] as const) {
    const p = variant === 'raw, no projection' ? { ...profile, projection: undefined } : profile;
    // Windows never fill here: observe() alone is measured; scoring and writing are measured below.
    const monitor = new DriftMonitor({ model: 'digits', version: 'bench', profile: p, options: driftOptions({ window: { rows: 1e12 } }), inputs: variant === 'standardized' ? 'standardized' : 'raw', standardize: { mean, std } });
    const x = variant === 'standardized' ? standardized : d.x;
    for (const batch of [1, 8, 32]) {
      const batches = Math.floor(d.rows / batch);
      const views = Array.from({ length: batches }, (_, b) => ({ x: x.subarray(b * batch * 64, (b + 1) * batch * 64), p: predictions.slice(b * batch, (b + 1) * batch) }));
      const run = (ms: number) => {
        let n = 0;
        const t0 = cpuMs();
        const until = t0 + ms;
        while (cpuMs() < until) {
          for (let i = 0; i < 256; i++) {
            const v = views[(n + i) % batches];
            monitor.observe(v.x, batch, v.p);
          }
          n += 256;
        }
        return { rows: n * batch, ms: cpuMs() - t0 };
      };
      run(200); // warm-up: let V8 optimise the loop
      const r = run(measureMs);
      const ns = (r.ms * 1e6) / r.rows;
      perRow[`${variant}/${batch}`] = ns;
      rows.push([variant, batch, fmt(ns, 0), fmt(r.rows / (r.ms / 1000)), fmt(ns / (64 + (p.projection ? 4 : 0) + 1), 1)]);
    }
  }

  // Off the hot path: score + write one 1000-row window, as flush() does every few seconds.
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-drift-bench-'));
  const store = DriftStore.open(home);
  const monitor = new DriftMonitor({ model: 'digits', version: 'bench', profile, options: driftOptions({ window: { rows: 1000 } }), store });
  const flushMs: number[] = [];
  for (let i = 0; i < 30; i++) {
    monitor.observe(d.x, 1000, predictions);
    const t0 = performance.now();
    monitor.flush();
    flushMs.push(performance.now() - t0);
  }
  store.close();
  rmSync(home, { recursive: true, force: true });
  flushMs.sort((a, b) => a - b);

  return [
    '### Drift monitoring: DriftMonitor.observe() per row, digits profile (64 inputs + 4 PCA components + confidence)',
    '',
    table(['inputs', 'batch', 'ns per row (CPU)', 'rows/s (one core)', 'ns per channel value'], rows),
    '',
    `Scoring and writing one 1000-row window (flush, off the hot path, synchronous=NORMAL): median ${fmt(flushMs[15], 2)} ms, max ${fmt(flushMs[29], 2)} ms.`,
    `Predicted serving cost: ${fmt(perRow['standardized/1'] / 1000, 2)} µs per single-row request (observe() after predict() on the standardised feed).`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { ms: { type: 'string', default: '1000' } } });
  runDriftBench(Number(values.ms)).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
