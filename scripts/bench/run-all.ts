/**
 * All benchmarks in sequence, tables (markdown) on stdout; progress and build output on stderr.
 * About four minutes on a 2-core machine: engine, drift observe(), serving (drift on / off /
 * echo), version swaps under load, toolchain (exported formats, training).
 *
 *   npm run bench                 (builds dist/ first: the serving benches run bin/edgeloop.js)
 *   npm run bench -- --no-build
 *   npm run bench -- --max-load 3     (first wait, at most 3 minutes, for the 1-minute load average to drop to 3)
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { runDriftBench } from './drift.js';
import { runEngine } from './engine.js';
import { runFeedbackBench } from './feedback.js';
import { runHttpBench } from './http.js';
import { learningTable, runLearningBench } from './learning.js';
import { runLearningServing } from './learning-serving.js';
import { runMemory } from './memory.js';
import { runMetricsBench } from './metrics.js';
import { runOverload } from './overload.js';
import { isMain, machine, targetsTable, type TargetRow } from './report.js';
import { runServing } from './serving.js';
import { runStartup } from './startup.js';
import { runSwap } from './swap.js';
import { runInference, runTraining } from './toolchain.js';

export const REPRODUCE = 'npm run bench';

/** The commit measured, and whether the work tree differed from it (others edit src/ meanwhile). */
function revision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  return git('status', '--porcelain', '--', 'src', 'models') ? `${head} + uncommitted changes in src/ or models/` : head;
}

/**
 * Wait (bounded) until the 1-minute load average is at most `maxLoad`: other people's work on a
 * shared machine skews every figure. Returns what was seen, for the record.
 */
export async function waitForQuiet(maxLoad: number, maxWaitMs: number): Promise<string> {
  const first = os.loadavg()[0];
  if (first <= maxLoad) return '';
  const until = Date.now() + maxWaitMs;
  console.error(`load average ${first.toFixed(2)} > ${maxLoad}: waiting up to ${maxWaitMs / 1000} s for it to drop`);
  while (Date.now() < until && os.loadavg()[0] > maxLoad) await new Promise((r) => setTimeout(r, 10_000));
  const now = os.loadavg()[0];
  const waited = Math.round((maxWaitMs - Math.max(0, until - Date.now())) / 1000);
  return now <= maxLoad ? ` (waited ${waited} s for it to drop from ${first.toFixed(2)} to ≤ ${maxLoad})` : ` (still above ${maxLoad} after waiting ${waited} s from ${first.toFixed(2)}: measured anyway)`;
}

export async function runAll(opts: { build?: boolean; maxLoad?: number; maxWaitMs?: number } = {}): Promise<string> {
  let buildNote = opts.build === false ? ' (dist/ not rebuilt)' : '';
  if (opts.build !== false) {
    // tsc still emits on type errors; a failed build is reported, not fatal (src/ may be mid-edit).
    const b = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 2, 2] });
    if (b.status !== 0) {
      console.error(`warning: npm run build exited with ${b.status}; benchmarking what tsc emitted to dist/`);
      buildNote = ' (the build reported type errors; dist/ as emitted)';
    }
  }
  const waitNote = opts.maxLoad !== undefined ? await waitForQuiet(opts.maxLoad, opts.maxWaitMs ?? 180_000) : '';
  const started = new Date();
  const load = os.loadavg(); // other work on the machine skews every figure: record it
  const rev = revision();
  const t0 = performance.now();
  const step = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    console.error(`${label}…`);
    const r = await f();
    console.error(`  ${label}: ${((performance.now() - s) / 1000).toFixed(0)} s`);
    return r;
  };
  const engine = await step('engine benchmark', () => runEngine());
  const drift = await step('drift observe() benchmark', () => runDriftBench());
  const serving = await step('serving benchmark: drift on / off / echo (about 90 s)', () => runServing());
  const swap = await step('swap-under-load benchmark (about 35 s)', () => runSwap());
  const feedback = await step('feedback benchmark: serving with / without feedback, paired rounds and three broker settings (about 5 min)', () => runFeedbackBench());
  const learnServing = await step('serving while fine-tuning (about 2 min)', () => runLearningServing());
  const learning = await step('fine-tuning: accuracy recovery per fault and model (about 2 min)', () => runLearningBench());
  const recovery: TargetRow[] = learning.map((r) => [`fine-tune recovery, ${r.model} ${r.fault}: ratio / clean drop`, `${r.ratio.toFixed(2)} / ${(r.cleanDrop * 100).toFixed(1)} points`, '≥ 0.8 / ≤ 2 points', r.ratio >= 0.8 && r.cleanDrop <= 0.02 ? 'met' : '**not met**']);
  const metrics = await step('metrics benchmark: serving with Prometheus metrics on / off (about 2 min)', () => runMetricsBench());
  const overload = await step('overload: 2,048 requests in flight (about 20 s)', () => runOverload());
  const httpBench = await step('HTTP /predict vs Flask + scikit-learn under gunicorn (about 90 s)', () => runHttpBench());
  const memory = await step('memory: stages of a start, idle and peak RSS (about 3 min)', () => runMemory());
  const startup = await step('start-up: spawn to first answer (about 1 min)', () => runStartup());
  // Last: training switches tfjs backends in this process. PROD as the trainer's worker sets it.
  tf.env().set('PROD', true);
  const inference = await step('toolchain: exported formats', () => runInference());
  const training = await step('toolchain: training', () => runTraining());
  const loadAfter = os.loadavg()[0];
  const targets: TargetRow[] = [...serving.targets, ...swap.targets, ...feedback.targets, ...learnServing.targets, ...recovery, ...metrics.targets, ...overload.targets, ...httpBench.targets, ...memory.targets, ...startup.targets, ...inference.targets];
  return [
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC at commit ${rev}${buildNote}, on ${machine()}; ` +
      `load average ${load.map((x) => x.toFixed(2)).join(' / ')} (1 / 5 / 15 min) before the run${waitNote}, ${loadAfter.toFixed(2)} (1 min) after; ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s of benchmarks.`,
    `Reproduce with \`${REPRODUCE}\` (tables only) or \`npx tsx scripts/bench/update-bench-doc.ts\` (rewrites this section).`,
    '',
    '### Targets (this run)',
    '',
    targetsTable(targets),
    '',
    serving.md,
    '',
    swap.md,
    '',
    feedback.md,
    '',
    learnServing.md,
    '',
    `### On-device fine-tuning (500 labelled faulty rows + 500 clean replay rows)\n\n${learningTable(learning)}`,
    '',
    metrics.md,
    '',
    overload.md,
    '',
    httpBench.md,
    '',
    memory.md,
    '',
    startup.md,
    '',
    engine,
    '',
    inference.md,
    '',
    training,
    '',
    drift,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { 'no-build': { type: 'boolean' }, 'max-load': { type: 'string' } } });
  runAll({ build: !values['no-build'], maxLoad: values['max-load'] ? Number(values['max-load']) : undefined }).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
