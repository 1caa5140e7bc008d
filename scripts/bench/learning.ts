/**
 * On-device fine-tuning (issue 10): for each field fault (four central pixels stuck at 0; the
 * image shifted one pixel right) and each digits model, the accuracy of the serving model on
 * clean and faulty held-out rows, the accuracy of the candidate fine-tuned (default strategy,
 * in the trainer process) on 500 labelled faulty rows plus 500 clean replay rows, the recovery
 * ratio (after − shifted) / (clean − shifted), the drop on clean rows and the fine-tune wall time.
 *
 *   npx tsx scripts/bench/learning.ts [--rows 500] [--models digits,digits-tfjs]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleAccuracy, fineTune, type DigitsFault } from '../../src/learning/index.js';
import { digitsScenario, faulty, ROOT, slice } from '../../test/helpers/learning-scenario.js';
import { isMain } from './report.js';

export interface LearningRow {
  model: string;
  fault: DigitsFault;
  strategy: string;
  clean: number;
  shifted: number;
  after: number;
  afterClean: number;
  ratio: number;
  cleanDrop: number;
  seconds: number;
  epochs: number;
}

const pct = (v: number) => (v * 100).toFixed(1);

/** Run every (model, fault) pair; one fine-tune each. */
export async function runLearningBench(o: { rows?: number; replay?: number; models?: string[]; faults?: DigitsFault[]; strategy?: 'auto' | 'full' | 'last-layers' | 'head'; learningRate?: number; epochs?: number; seed?: number } = {}): Promise<LearningRow[]> {
  const out: LearningRow[] = [];
  for (const model of o.models ?? ['digits', 'digits-tfjs']) {
    const dir = path.join(ROOT, 'models', model);
    const s = await digitsScenario(dir);
    const clean = await bundleAccuracy(dir, s.clean);
    for (const fault of o.faults ?? (['stuck-pixels', 'shift-right'] as const)) {
      const n = o.rows ?? 500;
      const heldShifted = faulty(s.clean, fault);
      const shifted = await bundleAccuracy(dir, heldShifted);
      const t0 = performance.now();
      const run = fineTune({ bundleDir: dir, rows: faulty(slice(s.pool, 0, n), fault), replay: slice(s.pool, s.pool.rows - (o.replay ?? 500), o.replay ?? 500), policy: { strategy: o.strategy ?? 'auto', learningRate: o.learningRate, epochs: o.epochs }, seed: o.seed });
      const r = await run.result;
      const seconds = (performance.now() - t0) / 1000;
      if (r.outcome !== 'candidate') throw new Error(`${model} ${fault}: ${r.outcome}: ${r.message}`);
      const after = await bundleAccuracy(r.dir, heldShifted);
      const afterClean = await bundleAccuracy(r.dir, s.clean);
      await r.discard();
      out.push({ model, fault, strategy: r.summary.strategy, clean, shifted, after, afterClean, ratio: (after - shifted) / (clean - shifted), cleanDrop: clean - afterClean, seconds, epochs: r.summary.epochsRun });
    }
  }
  return out;
}

/** Markdown table of the rows. */
export function learningTable(rows: LearningRow[]): string {
  const head = ['model', 'fault', 'strategy', 'acc clean', 'acc shifted', 'acc after (shifted)', 'ratio (>= 0.8)', 'acc after (clean)', 'clean drop (<= 2)', 'epochs', 'fine-tune wall time (< 60 s)'];
  const lines = rows.map((r) => [r.model, r.fault, r.strategy, pct(r.clean), pct(r.shifted), pct(r.after), r.ratio.toFixed(2), pct(r.afterClean), pct(r.cleanDrop), String(r.epochs), `${r.seconds.toFixed(1)} s`]);
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rows: { type: 'string' }, replay: { type: 'string' }, models: { type: 'string' }, strategy: { type: 'string' }, lr: { type: 'string' }, epochs: { type: 'string' }, seed: { type: 'string' }, faults: { type: 'string' } } });
  runLearningBench({ rows: values.rows ? Number(values.rows) : undefined, replay: values.replay ? Number(values.replay) : undefined, models: values.models?.split(','), strategy: values.strategy as 'auto' | undefined, learningRate: values.lr ? Number(values.lr) : undefined, epochs: values.epochs ? Number(values.epochs) : undefined, seed: values.seed ? Number(values.seed) : undefined, faults: values.faults?.split(',') as DigitsFault[] | undefined })
    .then((rows) => console.log(`### On-device fine-tuning (500 labelled faulty rows + 500 clean replay rows)\n\n${learningTable(rows)}`))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
