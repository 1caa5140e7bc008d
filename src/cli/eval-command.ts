import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import { fail } from './output.js';
import { formatEvaluation, loadToolchain } from './training-output.js';

export function registerEval(program: Command): void {
  program
    .command('eval <bundle>')
    .description('evaluate a bundle (ONNX, tfjs or ensemble) on a CSV file: classification report or regression metrics')
    .requiredOption('--data <file.csv>', 'data with the target column')
    .option('--label <column>', 'target column (default: the one the bundle was trained with)')
    .option('--rows <which>', "auto: the bundle's test split when the file is its training data, else all rows; test; all", 'auto')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'stack traces on errors')
    .addHelpText('after', '\nExamples:\n  edgeloop eval models/digits --data data/digits.csv\n  edgeloop eval models/diabetes --data data/diabetes.csv --rows all --json')
    .action(async (bundle: string, o: { data: string; label?: string; rows: string; json?: boolean; verbose?: boolean }) => {
      try {
        if (!['auto', 'test', 'all'].includes(o.rows)) throw new EdgeloopError('EDGELOOP_USAGE', `--rows must be auto, test or all; got '${o.rows}'`);
        const t = await loadToolchain();
        const r = await t.evaluateBundle(bundle, o.data, { label: o.label, rows: o.rows as 'auto', engine: t.EVAL_ENGINE_OPTIONS });
        if (o.json) {
          process.stdout.write(JSON.stringify({ bundle: r.bundle, data: r.data, task: r.evaluation.task, metrics: r.evaluation.metrics }, null, 2) + '\n');
          return;
        }
        const b = r.bundle;
        process.stdout.write(`${b.name}@${b.version} (${b.runtime} ${b.quantization}, ${b.backend}) on ${r.data.file}: ${r.data.rows} rows (${r.data.used})\n\n`);
        process.stdout.write(formatEvaluation(r.evaluation));
      } catch (err) {
        fail(err, o.verbose);
      }
    });
}
