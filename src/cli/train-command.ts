import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import { fail } from './output.js';
import { bundleNameFrom, formatBundles, formatCurves, formatEvaluation, homeDir, intOption, loadToolchain } from './training-output.js';

interface TrainOptions {
  data: string;
  label: string;
  spec: string;
  out: string;
  name?: string;
  modelVersion: string;
  format: string;
  export?: string;
  split: string;
  seed: number;
  epochs?: number;
  backend: string;
  worker?: boolean;
  home?: string;
  log: boolean;
  overwrite?: boolean;
  json?: boolean;
  chart: boolean;
  verbose?: boolean;
}

/**
 * Bundle targets: the primary at --out in --format, and each --export variant at
 * `<out>-<variant>` (or `variant=DIR`), named `<name>-<variant>`.
 */
export function parseTargets(o: Pick<TrainOptions, 'out' | 'name' | 'format' | 'export'>, parseVariant: (v: string) => string): { variant: string; dir: string; name: string }[] {
  const name = o.name ?? bundleNameFrom(o.out);
  const targets = [{ variant: parseVariant(o.format), dir: o.out, name }];
  for (const item of (o.export ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [v, dir] = item.split('=');
    const variant = parseVariant(v.trim());
    targets.push({ variant, dir: dir?.trim() || `${o.out}-${variant}`, name: dir?.trim() ? bundleNameFrom(dir.trim()) : `${name}-${variant}`.slice(0, 64) });
  }
  return targets;
}

/** Options `train` and `tune` share: what bundles to write, how to split and train, where to log. */
export function trainingOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'bundle name (default: the --out folder name)')
    .option('--model-version <v>', 'bundle version', '1.0.0')
    .option('--format <variant>', 'format of the --out bundle: tfjs, tfjs-float16, tfjs-uint8, onnx-fp32, onnx-int8, onnx-int8-static', 'tfjs')
    .option('--export <variants>', 'more bundles, comma-separated: variant or variant=DIR (default DIR: <out>-<variant>)')
    .option('--split <train,val,test>', 'split fractions (tune: cross-validation runs on train+validation)', '0.6,0.2,0.2')
    .option('--seed <n>', 'split (and fold) seed', intOption('--seed', 0), 1)
    .option('--epochs <n>', "override the spec's epochs", intOption('--epochs'))
    .option('--backend <name>', 'training backend: auto, tensorflow, wasm, cpu', 'auto')
    .option('--home <dir>', 'state directory holding the experiment log (default $EDGELOOP_HOME or .edgeloop)')
    .option('--no-log', 'do not record the run in the experiment log')
    .option('--overwrite', 'replace existing bundle folders');
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a model from a CSV file and write evaluated bundles (tfjs, ONNX fp32/int8, ...)')
    .requiredOption('--data <file.csv>', 'training data: a header row, numeric features and the label column')
    .requiredOption('--label <column>', 'the target column')
    .requiredOption('--spec <spec.json>', 'model spec (see README "Training toolchain")')
    .requiredOption('--out <dir>', 'bundle folder to write');
  trainingOptions(cmd)
    .option('--worker', 'train in a worker thread (as the daemon does)')
    .option('--no-chart', 'no terminal charts')
    .option('--json', 'print the result as JSON (progress still goes to stderr)')
    .option('--verbose', 'stack traces on errors')
    .addHelpText(
      'after',
      `
Example:
  edgeloop train --data data/digits.csv --label label --spec specs/digits-mlp.json \\
    --out build/digits --export onnx-fp32,onnx-int8,tfjs-uint8`,
    )
    .action(async (o: TrainOptions) => {
      let store: import('../training/index.js').RunStore | undefined;
      try {
        const t = await loadToolchain();
        const targets = parseTargets(o, t.parseVariant).map((x) => ({ ...x, variant: x.variant as import('../training/index.js').Variant }));
        if (!['auto', ...t.TRAINING_BACKENDS].includes(o.backend)) throw new EdgeloopError('EDGELOOP_USAGE', `--backend must be auto, ${t.TRAINING_BACKENDS.join(', ')}; got '${o.backend}'`);
        const split = t.parseFractions(o.split);
        store = o.log ? t.RunStore.open(homeDir(o.home)) : undefined;
        const progress = new t.EpochProgress(process.stderr);
        const controller = new AbortController();
        let runId: number | undefined;
        const onSigint = () => {
          if (controller.signal.aborted) {
            if (runId !== undefined) store?.fail(runId, 'interrupted');
            process.stderr.write('\nedgeloop: interrupted\n');
            process.exit(130);
          }
          process.stderr.write('\nstopping after this epoch (Ctrl-C again to abort)\n');
          controller.abort();
        };
        process.on('SIGINT', onSigint);
        const r = await t.trainPipeline({
          data: o.data,
          label: o.label,
          spec: o.spec,
          targets,
          version: o.modelVersion,
          split,
          splitSeed: o.seed,
          epochs: o.epochs,
          backend: o.backend as 'auto',
          mode: o.worker ? 'worker' : 'in-process',
          runs: store,
          overwrite: o.overwrite,
          signal: controller.signal,
          onEvent: (e) => progress.handle(e),
        });
        runId = r.runId;
        process.off('SIGINT', onSigint);
        if (o.json) {
          process.stdout.write(
            JSON.stringify(
              {
                runId: r.runId,
                backend: r.summary.backend,
                epochs: { run: r.summary.epochsRun, best: r.summary.bestEpoch },
                data: r.prepared.provenance,
                test: t.summarize(r.evaluation),
                bundles: r.bundles.map((b) => ({ variant: b.target.variant, dir: b.target.dir, name: b.manifest.name, metrics: b.metrics })),
              },
              null,
              2,
            ) + '\n',
          );
          return;
        }
        const p = r.prepared.provenance;
        const out = process.stdout;
        out.write(`\ndata   ${p.file}: ${p.rows} rows used, ${p.dropped.rows} dropped for missing values; ${p.features.length} features; label '${p.label}'${r.prepared.dataset.classes ? ` (${r.prepared.dataset.classes.length} classes)` : ''}\n`);
        out.write(`split  ${p.split.rows.train} train / ${p.split.rows.validation} validation / ${p.split.rows.test} test (seed ${p.split.seed}${p.split.stratified ? ', stratified' : ''})\n`);
        out.write(`model  ${t.describeArchitecture(r.spec, r.prepared.outputUnits)} (${r.summary.params} parameters)\n`);
        out.write(`fit    ${r.summary.epochsRun} epochs on tfjs '${r.summary.backend}', ${r.summary.samplesPerSecond} samples/s; kept epoch ${r.summary.bestEpoch}\n\n`);
        if (o.chart) out.write(formatCurves(r.summary.history) + '\n');
        out.write(`test split, trained model (tfjs float32):\n\n${formatEvaluation(r.evaluation)}\n`);
        out.write(formatBundles(r.bundles));
        out.write(`\nlearning curves: ${targets[0].dir}/curves.svg\n`);
        if (r.runId !== undefined) out.write(`run ${r.runId} recorded in ${homeDir(o.home)} (edgeloop runs show ${r.runId})\n`);
      } catch (err) {
        fail(err, o.verbose);
      } finally {
        store?.close();
      }
    });
}
