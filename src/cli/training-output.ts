import path from 'node:path';
// Light modules only: the toolchain itself (tfjs, onnxruntime) loads on demand, see loadToolchain.
import { terminalChart } from '../training/charts/terminal-chart.js';
import type { Evaluation, EpochRecord, TrainedBundle } from '../training/index.js';
import { formatClassificationReport, formatConfusionMatrix, formatRegressionReport } from '../training/metrics/index.js';
import { EdgeloopError } from '../errors.js';
import { formatBytes, table } from './output.js';

/** The classification report (and confusion matrix), or the regression metrics. */
export function formatEvaluation(e: Evaluation): string {
  if (e.task === 'classification') return `${formatClassificationReport(e.metrics)}\nconfusion matrix (rows: true class, columns: predicted)\n${formatConfusionMatrix(e.metrics)}`;
  return formatRegressionReport(e.metrics);
}

/** Loss curves, and accuracy or validation MAE, as terminal charts. */
export function formatCurves(history: readonly EpochRecord[]): string {
  const get = (k: string) => history.map((h) => h.metrics[k] ?? NaN);
  const charts = [terminalChart([{ name: 'train loss', values: get('loss'), mark: '*' }, { name: 'validation loss', values: get('val_loss'), mark: 'o' }], { title: 'loss', height: 10 })];
  if (history.some((h) => h.metrics.accuracy !== undefined)) {
    charts.push(terminalChart([{ name: 'train accuracy', values: get('accuracy'), mark: '*' }, { name: 'validation accuracy', values: get('val_accuracy'), mark: 'o' }], { title: 'accuracy', height: 8 }));
  } else if (history.some((h) => h.metrics.val_mae !== undefined)) {
    charts.push(terminalChart([{ name: 'validation MAE', values: get('val_mae'), mark: 'o' }], { title: 'validation MAE (target units)', height: 8 }));
  }
  return charts.join('\n');
}

const pct = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : '-');
const signed = (v: unknown) => (typeof v === 'number' ? `${v >= 0 ? '+' : ''}${v.toFixed(4)}` : '-');

/** One line per written bundle: format, size, test score and agreement with the float32 model. */
export function formatBundles(bundles: readonly TrainedBundle[]): string {
  const rows = bundles.map((b) => {
    const m = b.metrics as { modelBytes: number; vsFloat32: Record<string, number> };
    const score = b.evaluation.task === 'classification' ? b.evaluation.metrics.accuracy : b.evaluation.metrics.r2;
    const change = m.vsFloat32.accuracyChange ?? m.vsFloat32.r2Change;
    return [b.target.variant, b.target.dir, b.manifest.runtime, b.manifest.quantization, formatBytes(m.modelBytes), pct(score), signed(change), pct(m.vsFloat32.top1Agreement), m.vsFloat32.maxAbsDiff.toExponential(1)];
  });
  const scoreName = bundles[0]?.evaluation.task === 'regression' ? 'test R²' : 'test acc';
  return table(['variant', 'bundle', 'runtime', 'weights', 'size', scoreName, 'vs float32', 'top-1 agree', 'max |diff|'], rows);
}

/** A bundle name from a folder name: lower-case letters, digits, . _ - */
export function bundleNameFrom(dir: string): string {
  const n = path
    .basename(path.resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);
  if (!n) throw new EdgeloopError('EDGELOOP_USAGE', `cannot make a bundle name from '${dir}'; pass --name`);
  return n;
}

/** The state directory: --home, else $EDGELOOP_HOME, else ./.edgeloop (as `serve` uses). */
export function homeDir(home: string | undefined): string {
  return home ?? process.env.EDGELOOP_HOME ?? '.edgeloop';
}

/** A positive integer option. */
export function intOption(name: string, min = 1): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new EdgeloopError('EDGELOOP_USAGE', `${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

/**
 * The toolchain, imported on demand (commands that need no tfjs stay fast to start), with
 * tfjs's production flag set so its console banners do not mix into command output.
 */
export async function loadToolchain(): Promise<typeof import('../training/index.js')> {
  const tf = await import('@tensorflow/tfjs-core');
  tf.env().set('PROD', true);
  return import('../training/index.js');
}
