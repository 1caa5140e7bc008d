import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import { fail, table } from './output.js';
import { parseTargets, trainingOptions } from './train-command.js';
import { formatBundles, formatEvaluation, homeDir, intOption, loadToolchain } from './training-output.js';

interface TuneOptions {
  data: string;
  label: string;
  spec: string;
  grid: string;
  folds: number;
  metric?: string;
  out: string;
  name?: string;
  modelVersion: string;
  format: string;
  export?: string;
  split: string;
  seed: number;
  epochs?: number;
  backend: string;
  home?: string;
  log: boolean;
  overwrite?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export function registerTune(program: Command): void {
  const cmd = program
    .command('tune')
    .description('grid search with k-fold cross-validation; writes the best model as bundles')
    .requiredOption('--data <file.csv>', 'training data')
    .requiredOption('--label <column>', 'the target column')
    .requiredOption('--spec <spec.json>', 'base model spec')
    .requiredOption('--grid <grid.json|json>', 'parameter grid: {"spec.path": [values], ...}, a file or inline JSON')
    .requiredOption('--out <dir>', 'bundle folder for the best model')
    .option('--folds <k>', 'cross-validation folds', intOption('--folds', 2), 5)
    .option('--metric <name>', 'rank by: accuracy, macro_f1 (classifiers); r2, rmse, mae (regressors)');
  trainingOptions(cmd)
    .option('--json', 'print the result as JSON')
    .option('--verbose', 'stack traces on errors')
    .addHelpText(
      'after',
      `
Example:
  edgeloop tune --data data/wine.csv --label label --spec specs/wine.json --folds 5 \\
    --grid '{"layers.0.units": [8, 16, 32], "optimizer.learningRate": [0.01, 0.003]}' --out build/wine`,
    )
    .action(async (o: TuneOptions) => {
      let store: import('../training/index.js').RunStore | undefined;
      try {
        const t = await loadToolchain();
        if (o.metric !== undefined && !(t.TUNE_METRICS as readonly string[]).includes(o.metric)) throw new EdgeloopError('EDGELOOP_USAGE', `--metric must be one of ${t.TUNE_METRICS.join(', ')}; got '${o.metric}'`);
        if (!['auto', ...t.TRAINING_BACKENDS].includes(o.backend)) throw new EdgeloopError('EDGELOOP_USAGE', `--backend must be auto, ${t.TRAINING_BACKENDS.join(', ')}; got '${o.backend}'`);
        const targets = parseTargets(o, t.parseVariant).map((x) => ({ ...x, variant: x.variant as import('../training/index.js').Variant }));
        store = o.log ? t.RunStore.open(homeDir(o.home)) : undefined;
        const progress = new t.EpochProgress(process.stderr, { bars: false });
        const r = await t.tunePipeline({
          data: o.data,
          label: o.label,
          spec: o.spec,
          grid: o.grid,
          folds: o.folds,
          metric: o.metric as import('../training/index.js').TuneMetric | undefined,
          targets,
          version: o.modelVersion,
          split: t.parseFractions(o.split),
          splitSeed: o.seed,
          epochs: o.epochs,
          backend: o.backend as 'auto',
          runs: store,
          overwrite: o.overwrite,
          onTrial: (trial, done, total) => process.stderr.write(`trial ${done}/${total}  ${t.formatParams(trial.params)}  ${trial.mean.toFixed(4)} ± ${trial.std.toFixed(4)}  ${(trial.durationMs / 1000).toFixed(1)}s\n`),
          onEvent: (e) => {
            // epoch-start carries the epoch count (`epoch 3/40`); batch bars are noise over many folds.
            if (e.type !== 'batch') progress.handle(e);
          },
        });
        if (o.json) {
          process.stdout.write(JSON.stringify({ runId: r.runId, metric: r.metric, folds: r.folds, trials: r.trials, test: t.summarize(r.evaluation), bundles: r.bundles.map((b) => ({ variant: b.target.variant, dir: b.target.dir, metrics: b.metrics })) }, null, 2) + '\n');
          return;
        }
        const out = process.stdout;
        out.write(`\n${r.folds}-fold cross-validation, ranked by ${r.metric}:\n\n`);
        out.write(table(['rank', ...Object.keys(r.trials[0].params), `${r.metric} mean`, 'std', 'time'], r.trials.map((x) => [x.rank, ...Object.values(x.params).map((v) => JSON.stringify(v)), x.mean.toFixed(4), x.std.toFixed(4), `${(x.durationMs / 1000).toFixed(1)}s`])));
        out.write(`\nbest: ${t.formatParams(r.trials[0].params)}, retrained on the training split (${r.summary.epochsRun} epochs, tfjs '${r.summary.backend}')\n\ntest split:\n\n${formatEvaluation(r.evaluation)}\n`);
        out.write(formatBundles(r.bundles));
        if (r.runId !== undefined) out.write(`\nrun ${r.runId} recorded in ${homeDir(o.home)} (edgeloop runs show ${r.runId})\n`);
      } catch (err) {
        fail(err, o.verbose);
      } finally {
        store?.close();
      }
    });
}
