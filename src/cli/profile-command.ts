import type { Command } from 'commander';
import { profileBundle, type ProfileBundleResult } from '../drift/index.js';
import { EdgeloopError } from '../errors.js';
import { print } from './models-command.js';
import { fail, table } from './output.js';

interface Opts {
  data: string;
  label?: string;
  bins: number;
  components?: number;
  chunkRows?: number;
  calibration: boolean;
  out?: string;
  name?: string;
  bundleVersion?: string;
  json?: boolean;
  verbose?: boolean;
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new EdgeloopError('EDGELOOP_USAGE', `'--${name}' must be a whole number, got '${v}'`);
  return n;
};

function summary(r: ProfileBundleResult): string {
  const p = r.profile;
  const lines = [
    `${r.wrapped ? 'wrote a new bundle around the model' : 'wrote'} ${r.dir} (${r.manifest.name}@${r.manifest.version}) with a reference profile from ${r.rows} rows${r.dropped ? ` (${r.dropped} with missing values left out)` : ''}`,
    `features: ${p.features.length}, bins per feature: up to ${Math.max(...p.features.map((f) => f.counts.length))} (quantile edges, plus under/overflow)`,
  ];
  if (p.projection) lines.push(`projection: ${p.projection.components.length} principal components, explaining ${(p.projection.explained.reduce((a, b) => a + b, 0) * 100).toFixed(1)}% of the standardised variance`);
  const pred = p.predictions;
  if (pred?.kind === 'classification') {
    const total = pred.counts.reduce((a, b) => a + b, 0);
    lines.push('predicted classes on the data:');
    lines.push(table(['label', 'rows', 'share'], pred.labels.map((l, i) => [l, pred.counts[i], `${((pred.counts[i] / total) * 100).toFixed(1)}%`])).trimEnd());
  } else if (pred?.kind === 'regression') {
    lines.push(`predictions: mean ${pred.mean.toFixed(4)}, std ${pred.std.toFixed(4)}, range ${pred.min.toFixed(4)} .. ${pred.max.toFixed(4)}`);
  }
  const c = p.calibration;
  if (c) {
    const max = (k: 'psi' | 'js' | 'wasserstein') => Math.max(...c.features.map((f) => f[k])).toFixed(3);
    lines.push(`calibrated thresholds (mean + ${c.sigma} sigma over ${c.chunks} bootstrap chunks of ${c.chunkRows} rows; used with drift.thresholds.calibrated): largest PSI ${max('psi')}, JS ${max('js')}, Wasserstein/std ${max('wasserstein')}`);
  }
  if (r.wrapped) lines.push(`install it with: edgeloop models add ${r.dir}`);
  return lines.join('\n') + '\n';
}

export function registerProfile(program: Command): void {
  program
    .command('profile <bundle>')
    .description('build (or replace) the drift reference profile of a bundle, or of a bare .onnx (wrapped into a bundle)')
    .requiredOption('--data <file.csv>', 'reference data: a header row, one column per model input value (and optionally a label)')
    .option('--label <column>', 'label column, left out of the features (default: a column named label/target/class/y when there is one more column than inputs)')
    .option('--bins <n>', 'quantile bins per feature', int('bins'), 10)
    .option('--components <k>', 'principal components monitored besides the inputs (default 4 for 16+ inputs, else 0)', int('components'))
    .option('--chunk-rows <n>', 'rows per bootstrap chunk for calibrated thresholds (default min(1000, rows)); match drift.window.rows', int('chunk-rows'))
    .option('--no-calibration', 'skip the calibrated thresholds')
    .option('--out <dir>', 'write the bundle here instead of in place')
    .option('--name <name>', 'model name of the bundle written')
    .option('--bundle-version <version>', 'version of the bundle written (installed versions are immutable: give a re-profiled one a new version)')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'stack traces on errors')
    .addHelpText('after', '\nExamples:\n  edgeloop profile models/digits --data data/digits.csv --label label --out ./digits-1.0.1 --bundle-version 1.0.1\n  edgeloop profile ./sensor.onnx --data readings.csv --out ./sensor')
    .action(async (bundle: string, o: Opts) => {
      try {
        const r = await profileBundle(bundle, o.data, {
          label: o.label,
          bins: o.bins,
          components: o.components,
          chunkRows: o.calibration ? o.chunkRows : 0,
          out: o.out,
          name: o.name,
          version: o.bundleVersion,
        });
        print(o, { dir: r.dir, name: r.manifest.name, version: r.manifest.version, wrapped: r.wrapped, rows: r.rows, dropped: r.dropped, reference: r.profile }, () => summary(r));
      } catch (err) {
        fail(err, o.verbose);
      }
    });
}
