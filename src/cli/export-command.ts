import type { Command } from 'commander';
import { loadToolchain } from './training-output.js';
import { fail, formatBytes, table } from './output.js';
import { parseTargets } from './train-command.js';

interface ExportOptions {
  to: string;
  out?: string;
  data?: string;
  label?: string;
  overwrite?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export function registerExport(program: Command): void {
  program
    .command('export <bundle>')
    .description('export a trained tfjs bundle to other formats: tfjs-float16, tfjs-uint8, onnx-fp32, onnx-int8')
    .requiredOption('--to <variants>', 'comma-separated: variant or variant=DIR (default DIR: <bundle>-<variant>)')
    .option('--data <file.csv>', 'score each export next to the source (its test split when the file is its training data)')
    .option('--label <column>', 'target column for --data')
    .option('--overwrite', 'replace existing bundle folders')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'stack traces on errors')
    .addHelpText('after', '\nExample:\n  edgeloop export build/digits --to onnx-int8,tfjs-uint8 --data data/digits.csv')
    .action(async (bundle: string, o: ExportOptions) => {
      try {
        const t = await loadToolchain();
        const { readManifest } = await import('../bundle/index.js');
        const source = await readManifest(bundle);
        // The variants only: parseTargets' primary is the source itself.
        const targets = parseTargets({ out: bundle.replace(/[\\/]+$/, ''), name: source.name, format: 'tfjs', export: o.to }, t.parseVariant)
          .slice(1)
          .map((x) => ({ ...x, variant: x.variant as import('../training/index.js').Variant }));
        const r = await t.exportBundle({ source: bundle, targets, data: o.data, label: o.label, engine: t.EVAL_ENGINE_OPTIONS, overwrite: o.overwrite });
        if (o.json) {
          process.stdout.write(JSON.stringify(r.exported.map((e) => ({ variant: e.target.variant, dir: e.target.dir, metrics: e.manifest.metrics })), null, 2) + '\n');
          return;
        }
        const score = (e?: import('../training/index.js').BundleEvaluation) => (e ? (e.evaluation.task === 'classification' ? e.evaluation.metrics.accuracy : e.evaluation.metrics.r2).toFixed(4) : '-');
        const rows = [[`${r.source.name} (source)`, bundle, r.source.runtime, r.source.quantization, '-', score(r.sourceEvaluation)]];
        for (const e of r.exported) rows.push([e.manifest.name, e.target.dir, e.manifest.runtime, e.manifest.quantization, formatBytes(Number((e.manifest.metrics as { modelBytes: number }).modelBytes)), score(e.evaluation)]);
        process.stdout.write(table(['bundle', 'folder', 'runtime', 'weights', 'size', o.data ? 'score' : ''], rows));
      } catch (err) {
        fail(err, o.verbose);
      }
    });
}
