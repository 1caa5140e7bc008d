import type { Command } from 'commander';
import { fail, table } from './output.js';
import { formatCurves, homeDir, intOption } from './training-output.js';

const when = (iso: string | null) => (iso ? iso.replace('T', ' ').slice(0, 19) : '-');
const secs = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);

/** The headline test score of a run's metrics. */
function headline(metrics: Record<string, unknown> | null): string {
  const gate = metrics?.gate as { holdout?: { candidate?: number; serving?: number } } | undefined;
  if (gate?.holdout?.candidate !== undefined && gate.holdout.serving !== undefined) return `holdout ${gate.holdout.serving.toFixed(3)} -> ${gate.holdout.candidate.toFixed(3)}`;
  const test = (metrics?.test ?? undefined) as Record<string, number> | undefined;
  if (!test) return '-';
  if (test.accuracy !== undefined) return `acc ${test.accuracy.toFixed(4)}`;
  if (test.r2 !== undefined) return `R² ${test.r2.toFixed(4)}`;
  return '-';
}

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('the experiment log: every train and tune run');
  runs
    .command('list')
    .description('recent runs, newest first')
    .option('--home <dir>', 'state directory (default $EDGELOOP_HOME or .edgeloop)')
    .option('--limit <n>', 'how many', intOption('--limit'), 20)
    .option('--model <name>', 'only fine-tune runs of this model')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  edgeloop runs list --limit 5\n  edgeloop runs list --model digits')
    .action(async (o: { home?: string; limit: number; model?: string; json?: boolean }) => {
      try {
        const { RunStore } = await import('../training/runs/index.js');
        const store = RunStore.open(homeDir(o.home));
        const rows = store.list({ limit: o.limit, model: o.model });
        store.close();
        if (o.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (rows.length === 0) {
          process.stdout.write(`no runs recorded in ${homeDir(o.home)}\n`);
          return;
        }
        process.stdout.write(
          table(
            ['id', 'kind', 'status', 'name', 'started', 'duration', 'backend', 'test'],
            rows.map((r) => [
              r.id,
              r.kind,
              r.status,
              r.kind === 'finetune' ? `${r.model}@${r.parentVersion}${r.version ? ` -> ${r.version}` : ''}` : (r.name ?? '-'),
              when(r.startedAt),
              secs(r.durationMs),
              r.backend ?? '-',
              r.status === 'failed' || r.status === 'interrupted' ? (r.error ?? '').slice(0, 60) : headline(r.metrics),
            ]),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });
  runs
    .command('show <id>')
    .description('one run: parameters, per-epoch metrics (with curves), tuning trials, final metrics, artifacts')
    .option('--home <dir>', 'state directory (default $EDGELOOP_HOME or .edgeloop)')
    .option('--json', 'machine-readable output')
    .option('--no-chart', 'no terminal charts')
    .addHelpText('after', '\nExample:\n  edgeloop runs show 3')
    .action(async (id: string, o: { home?: string; json?: boolean; chart: boolean }) => {
      try {
        const { RunStore } = await import('../training/runs/index.js');
        const { EdgeloopError } = await import('../errors.js');
        const n = Number(id);
        if (!Number.isInteger(n) || n < 1) throw new EdgeloopError('EDGELOOP_USAGE', `run id must be a positive integer, got '${id}'`);
        const store = RunStore.open(homeDir(o.home));
        let run;
        try {
          run = store.get(n);
        } finally {
          store.close();
        }
        if (o.json) {
          process.stdout.write(JSON.stringify(run, null, 2) + '\n');
          return;
        }
        const out = process.stdout;
        out.write(`run ${run.id}  ${run.kind}  ${run.status}${run.name ? `  ${run.name}` : ''}\n`);
        if (run.kind === 'finetune') out.write(`model ${run.model}  parent ${run.parentVersion}  candidate ${run.version ?? '-'}\n`);
        out.write(`started ${when(run.startedAt)}  finished ${when(run.finishedAt)}  duration ${secs(run.durationMs)}  backend ${run.backend ?? '-'}\n`);
        if (run.error) out.write(`error: ${run.error}\n`);
        out.write(`\nparameters\n${JSON.stringify(run.params, null, 2)}\n`);
        if (run.trials.length) {
          out.write('\ntrials\n');
          out.write(table(['rank', 'trial', 'score', 'std', 'params', 'time'], run.trials.map((t) => [t.rank, t.trial, t.scoreMean.toFixed(4), t.scoreStd.toFixed(4), JSON.stringify(t.params), secs(t.durationMs)])));
        }
        if (run.epochs.length) {
          out.write('\nepochs\n');
          const keys = [...new Set(run.epochs.flatMap((e) => Object.keys(e.metrics)))];
          out.write(table(['epoch', ...keys, 'time'], run.epochs.map((e) => [e.epoch, ...keys.map((k) => (e.metrics[k] === undefined ? '-' : e.metrics[k].toFixed(4))), secs(e.ms)])));
          if (o.chart) out.write('\n' + formatCurves(run.epochs));
        }
        if (run.metrics) out.write(`\nmetrics\n${JSON.stringify(run.metrics, null, 2)}\n`);
        if (run.artifacts) out.write(`\nartifacts\n${JSON.stringify(run.artifacts, null, 2)}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
