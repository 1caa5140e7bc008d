import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import type { ExportResult, MeasuredModel } from '../training/index.js';
import { loadToolchain } from './training-output.js';
import { fail, formatBytes, table } from './output.js';
import { parseTargets } from './train-command.js';

interface ExportOptions {
  to: string;
  out?: string;
  data?: string;
  label?: string;
  tolerance?: string;
  measure: boolean;
  overwrite?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export function registerExport(program: Command): void {
  program
    .command('export <bundle>')
    .description('export a trained tfjs bundle to other formats, measure them on this machine and recommend the fastest within tolerance')
    .requiredOption('--to <variants>', 'comma-separated: variant or variant=DIR (default DIR: <bundle>-<variant>); tfjs-float16, tfjs-uint8, onnx-fp32, onnx-int8, onnx-int8-static')
    .option('--data <file.csv>', 'score each export next to the source (its test split when the file is its training data)')
    .option('--label <column>', 'target column for --data')
    .option('--tolerance <x>', 'largest score drop (accuracy or R²) versus the source a recommended variant may have', '0.01')
    .option('--no-measure', 'skip measuring throughput (and the recommendation)')
    .option('--overwrite', 'replace existing bundle folders')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'stack traces on errors')
    .addHelpText('after', '\nExample:\n  edgeloop export build/digits --to onnx-fp32,onnx-int8,onnx-int8-static --data data/digits.csv')
    .action(async (bundle: string, o: ExportOptions) => {
      try {
        const tolerance = Number(o.tolerance);
        if (!(tolerance >= 0) || !Number.isFinite(tolerance)) throw new EdgeloopError('EDGELOOP_USAGE', `--tolerance must be a number >= 0, got '${o.tolerance}'`);
        const t = await loadToolchain();
        const { readManifest } = await import('../bundle/index.js');
        const source = await readManifest(bundle);
        // The variants only: parseTargets' primary is the source itself.
        const targets = parseTargets({ out: bundle.replace(/[\\/]+$/, ''), name: source.name, format: 'tfjs', export: o.to }, t.parseVariant)
          .slice(1)
          .map((x) => ({ ...x, variant: x.variant as import('../training/index.js').Variant }));
        const onMeasure = ({ models, seconds }: { models: number; seconds: number }) => {
          if (process.stderr.isTTY) process.stderr.write(`measuring ${models} models on this machine (about ${Math.ceil(seconds)} s)...\n`);
        };
        const r = await t.exportBundle({ source: bundle, targets, data: o.data, label: o.label, engine: t.EVAL_ENGINE_OPTIONS, overwrite: o.overwrite, measure: o.measure, tolerance, onMeasure });
        process.stdout.write(o.json ? `${JSON.stringify(toJson(r), null, 2)}\n` : formatExport(r));
      } catch (err) {
        fail(err, o.verbose);
      }
    });
}

/** Rows per second over the baseline's at `batch`, if both were measured. */
function vsBaseline(r: ExportResult, m: MeasuredModel, batch: number): number | undefined {
  const base = r.models.find((x) => x.variant === r.baseline);
  const rate = (x: MeasuredModel | undefined) => x?.throughput.find((t) => t.batch === batch)?.rowsPerSecond;
  const a = rate(m);
  const b = rate(base);
  return a !== undefined && b ? a / b : undefined;
}

function toJson(r: ExportResult) {
  const batches = r.models[0]?.throughput.map((t) => t.batch) ?? [];
  return {
    exported: r.exported.map((e) => ({ variant: e.target.variant, dir: e.target.dir, metrics: e.manifest.metrics })),
    tolerance: r.tolerance,
    measured: r.recommendation !== undefined,
    baseline: r.baseline,
    models: r.models.map((m) => ({
      ...m,
      dir: m.dir ?? null,
      throughput: m.throughput.map((t) => ({ ...t, vsBaseline: vsBaseline(r, m, t.batch) })),
      recommended: r.recommendation?.name === m.variant,
    })),
    recommended: r.recommendation?.name ?? null,
    fastest: r.recommendation ? Object.fromEntries(batches.map((b) => [b, r.recommendation!.fastest[b]])) : null,
  };
}

const rowsPerSecond = (v: number) => Math.round(v).toLocaleString('en-US');

/** The comparison table and the recommendation, for people. */
function formatExport(r: ExportResult): string {
  const batches = r.models[0]?.throughput.map((t) => t.batch) ?? [];
  const scoreName = r.sourceEvaluation?.evaluation.task === 'regression' ? 'R²' : 'accuracy';
  const signed = (v?: number) => (v === undefined ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(4)}`);
  const rows = r.models.map((m) => [
    m.variant + (m.written || m.variant === 'source' ? '' : ' (reference, not written)'),
    m.dir ?? '-',
    m.runtime,
    m.quantization,
    m.modelBytes === undefined ? '-' : formatBytes(m.modelBytes),
    ...(r.sourceEvaluation ? [m.score === undefined ? '-' : m.score.toFixed(4), signed(m.scoreChange), m.withinTolerance ? 'yes' : 'no'] : []),
    ...batches.map((b) => `${rowsPerSecond(m.throughput.find((t) => t.batch === b)!.rowsPerSecond)} (${vsBaseline(r, m, b)!.toFixed(2)}x)`),
  ]);
  const headers = ['variant', 'folder', 'runtime', 'weights', 'size', ...(r.sourceEvaluation ? [scoreName, 'vs source', `within ${r.tolerance}`] : []), ...batches.map((b) => `batch ${b} rows/s`)];
  let out = table(headers, rows);
  const rec = r.recommendation;
  if (!rec) return out;
  const base = r.baseline === 'source' ? 'the source' : `the float32 ONNX model`;
  out += `\nthroughput: engine.run in a loop on this machine (CPU, one thread), the models taking turns; (Nx) is relative to ${base}\n`;
  const accuracy = r.sourceEvaluation ? `within ${r.tolerance} of the source's ${scoreName}` : 'accuracy not checked (pass --data to check it)';
  const speedups = batches.map((b) => `${rec.speedup[b].toFixed(2)}x`).join(' / ');
  if (rec.name !== r.baseline) {
    out += `recommended on this machine: ${rec.name} (${accuracy}; ${speedups} the throughput of ${base} at batch ${batches.join(' / ')})\n`;
  } else {
    const faster = batches.filter((b) => rec.fastest[b] !== r.baseline).map((b) => `at batch ${b} alone ${rec.fastest[b]} is ${vsBaseline(r, r.models.find((m) => m.variant === rec.fastest[b])!, b)!.toFixed(2)}x`);
    out += `recommended on this machine: ${rec.name} (no variant ${r.sourceEvaluation ? `within ${r.tolerance} of the source's ${scoreName} ` : ''}is faster at every batch size${faster.length ? `; ${faster.join(', ')}` : ''})\n`;
  }
  return out;
}
