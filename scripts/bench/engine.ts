/**
 * Raw engine throughput, no MQTT and no batcher: engine.run() in a loop on the three demo
 * bundles (int8 ONNX, fp32 ONNX, tfjs) at batch 1 and 32, for a fixed time each.
 *
 *   npx tsx scripts/bench/engine.ts [--ms 1500]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openModelSource } from '../../src/bundle/index.js';
import { loadModel, type Engine, type EngineTensor, type EngineOptions } from '../../src/engine/index.js';
import { fmt, isMain, table } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const MODELS = ['digits', 'digits-fp32', 'digits-tfjs'];
const BATCHES = [1, 32];
export const WINDOWS = 3;
const engineOpts: EngineOptions = {
  onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  tfjs: { backends: ['tensorflow', 'wasm', 'cpu'] },
};

export async function runEngine(measureMs = 1500): Promise<string> {
  const sample = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;
  const rows: (string | number)[][] = [];
  for (const name of MODELS) {
    const { manifest, engine } = await loadModel(await openModelSource(path.join(root, 'models', name)), engineOpts);
    try {
      for (const b of BATCHES) {
        const data = Float32Array.from({ length: b * 64 }, (_, i) => sample[Math.floor(i / 64) % sample.length][i % 64]);
        const feeds = { [engine.inputs[0].name]: { dtype: 'float32' as const, data, dims: [b, 64] } };
        const best = await bestCallsPerSecond(engine, feeds, measureMs);
        rows.push([`${name} (${engine.runtime} ${engine.backend}, ${manifest.quantization})`, b, fmt(best), fmt(best * b), fmt(1e6 / best, 1)]);
      }
    } finally {
      await engine.dispose();
    }
  }
  return [
    `### Raw engine throughput: engine.run() in a loop, best of ${WINDOWS} windows of ${fmt(measureMs / WINDOWS / 1000, 1)} s per row, 1 intra-op thread`,
    '',
    table(['model', 'batch', 'calls/s', 'rows/s', 'µs per call'], rows),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { ms: { type: 'string' } } });
  runEngine(values.ms ? Number(values.ms) : undefined).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/**
 * calls/s of engine.run on fixed feeds: a warm-up, then WINDOWS timed loops (bounded in time
 * and count); the best window is reported, since on a shared machine noise only slows one down.
 */
export async function bestCallsPerSecond(engine: Engine, feeds: Record<string, EngineTensor>, measureMs: number): Promise<number> {
  const warm = performance.now() + 300;
  for (let i = 0; i < 100_000 && performance.now() < warm; i++) await engine.run(feeds);
  let best = 0;
  for (let w = 0; w < WINDOWS; w++) {
    let calls = 0;
    const t0 = performance.now();
    const until = t0 + measureMs / WINDOWS;
    while (calls < 1_000_000 && performance.now() < until) {
      await engine.run(feeds);
      calls++;
    }
    best = Math.max(best, calls / ((performance.now() - t0) / 1000));
  }
  return best;
}
