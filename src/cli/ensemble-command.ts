import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import { fail, formatBytes, table } from './output.js';
import { bundleNameFrom, formatEvaluation, loadToolchain } from './training-output.js';

interface EnsembleOptions {
  out: string;
  name?: string;
  modelVersion: string;
  weights?: string;
  data?: string;
  label?: string;
  overwrite?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export function registerEnsemble(program: Command): void {
  program
    .command('ensemble <members...>')
    .description('combine bundles into one soft-voting ensemble bundle (one ONNX graph), served and evaluated like any other')
    .requiredOption('--out <dir>', 'bundle folder to write')
    .option('--name <name>', 'bundle name (default: the --out folder name)')
    .option('--model-version <v>', 'bundle version', '1.0.0')
    .option('--weights <w,...>', 'voting weights, one per member (default: equal)')
    .option('--data <file.csv>', 'score the ensemble and each member on this file (their test split when it is their training data)')
    .option('--label <column>', 'target column for --data')
    .option('--overwrite', 'replace an existing bundle folder')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'stack traces on errors')
    .addHelpText('after', '\nExample:\n  edgeloop ensemble build/digits-a build/digits-b build/digits-c --out build/digits-vote --data data/digits.csv')
    .action(async (members: string[], o: EnsembleOptions) => {
      try {
        const t = await loadToolchain();
        const weights = o.weights?.split(',').map((w) => Number(w.trim()));
        if (weights?.some((w) => !Number.isFinite(w))) throw new EdgeloopError('EDGELOOP_USAGE', `--weights must be numbers, got '${o.weights}'`);
        const r = await t.buildEnsemble({ members, weights, out: o.out, name: o.name ?? bundleNameFrom(o.out), version: o.modelVersion, data: o.data, label: o.label, engine: t.EVAL_ENGINE_OPTIONS, overwrite: o.overwrite });
        if (o.json) {
          process.stdout.write(JSON.stringify({ manifest: r.manifest, members: r.members.map((m) => ({ dir: m.dir, name: m.name, version: m.version, metrics: m.evaluation && t.summarize(m.evaluation.evaluation) })), metrics: r.evaluation && t.summarize(r.evaluation.evaluation) }, null, 2) + '\n');
          return;
        }
        const out = process.stdout;
        const bytes = r.manifest.artifacts.reduce((a, x) => a + x.bytes, 0);
        out.write(`wrote ${o.out}: soft-voting ensemble of ${members.length} members (onnx ${r.manifest.quantization}, ${formatBytes(bytes)})\n`);
        if (r.evaluation) {
          const score = (e: import('../training/index.js').Evaluation) => (e.task === 'classification' ? e.metrics.accuracy : e.metrics.r2).toFixed(4);
          out.write(`\nscored on ${r.evaluation.data.file}: ${r.evaluation.data.rows} rows (${r.evaluation.data.used})\n\n`);
          out.write(table(['model', r.evaluation.evaluation.task === 'classification' ? 'accuracy' : 'R²'], [...r.members.map((m) => [`${m.name}@${m.version}`, score(m.evaluation!.evaluation)]), [`${r.manifest.name} (ensemble)`, score(r.evaluation.evaluation)]]));
          out.write(`\n${formatEvaluation(r.evaluation.evaluation)}`);
        }
      } catch (err) {
        fail(err, o.verbose);
      }
    });
}
