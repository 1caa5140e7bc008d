import type { Command } from 'commander';
import { readConfigFile, resolveConfig } from '../config/index.js';
import { EdgeloopError } from '../errors.js';
import type { RetrainOutcome } from '../learning/learning-service.js';
import { fail } from './output.js';
import { openState, type HomeOptions } from './state-client.js';

type RetrainOpts = HomeOptions & { strategy?: string; epochs?: number; dryRun?: boolean; wait?: boolean; json?: boolean; cancel?: boolean };

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/** The outcome for people: one line, then the gate's numbers. */
export function describeOutcome(o: RetrainOutcome): string {
  const head =
    o.outcome === 'promoted'
      ? `${o.model}: ${o.version} promoted on trial (from ${o.parentVersion})`
      : o.outcome === 'refused'
        ? `${o.model}: candidate ${o.version ?? '-'} refused${o.dryRun ? ' (dry run)' : ''}`
        : `${o.model}: fine-tune failed`;
  const lines = [`${head}  [run ${o.runId}, ${(o.durationMs / 1000).toFixed(1)} s]`, `  ${o.reason}`];
  lines.push(`  rows: ${o.rows.new} new, ${o.rows.replay} replay, ${o.rows.holdout} holdout${o.strategy ? `; strategy ${o.strategy}` : ''}`);
  const g = o.gate;
  if (g) {
    lines.push(`  holdout (${g.holdout.rows} rows): serving ${pct(g.holdout.parent)} -> candidate ${pct(g.holdout.candidate)}  gain ${(g.holdout.gain * 100).toFixed(1)} pts (needs ${(g.minGain * 100).toFixed(1)}), p=${g.holdout.pValue.toPrecision(2)}`);
    if (g.anchor) lines.push(`  anchor  (${g.anchor.rows} rows): serving ${pct(g.anchor.parent)} -> candidate ${pct(g.anchor.candidate)}  drop ${(g.anchor.drop * 100).toFixed(1)} pts (at most ${(g.maxAnchorDrop * 100).toFixed(1)})`);
  }
  return lines.join('\n') + '\n';
}

export function registerRetrain(program: Command): void {
  program
    .command('retrain <model>')
    .description('fine-tune a model on its labelled feedback; promoted on trial only if the gate finds it better')
    .option('--home <dir>', 'state directory (default $EDGELOOP_HOME or .edgeloop)')
    .option('-c, --config <file>', 'device config (its learning and gate settings, offline)')
    .option('--strategy <s>', 'auto | full | last-layers | head (default: the config, else auto)')
    .option('--epochs <n>', 'training epochs (early stopping keeps the best)', (v) => Number(v))
    .option('--dry-run', 'train and score the candidate, install nothing')
    .option('--wait', 'wait for the outcome (default when the daemon is not running)')
    .option('--cancel', 'cancel the running fine-tune of this model')
    .option('--json', 'machine-readable output: one JSON object')
    .addHelpText('after', '\nExamples:\n  edgeloop retrain digits --wait\n  edgeloop retrain digits --strategy head --epochs 20 --dry-run --wait --json\n\nExit codes: 0 promoted (or a dry run), 6 refused by the gate, 1 failed.')
    .action(async (model: string, o: RetrainOpts) => {
      try {
        const body = { strategy: o.strategy, epochs: o.epochs, dryRun: o.dryRun === true, wait: o.wait === true };
        const s = await openState(o);
        let outcome: RetrainOutcome;
        if (s.mode === 'daemon') {
          if (o.cancel) {
            const r = await s.call<{ cancelled: boolean }>('POST', `/models/${encodeURIComponent(model)}/retrain/cancel`, {});
            process.stdout.write(o.json ? JSON.stringify(r) + '\n' : r.cancelled ? `${model}: fine-tune cancelled\n` : `${model}: no fine-tune running\n`);
            return;
          }
          const answer = await s.call<RetrainOutcome | { runId: number }>('POST', `/models/${encodeURIComponent(model)}/retrain`, body);
          if (!('outcome' in answer)) {
            process.stdout.write(o.json ? JSON.stringify(answer) + '\n' : `${model}: fine-tune run ${answer.runId} started; follow it with \`edgeloop runs show ${answer.runId}\`\n`);
            return;
          }
          outcome = answer;
        } else {
          s.registry.close();
          if (o.cancel) throw new EdgeloopError('EDGELOOP_USAGE', 'no daemon runs, so no fine-tune runs to cancel');
          const config = resolveConfig(o.config ? readConfigFile(o.config) : {}, { home: o.home });
          const { retrainOffline } = await import('../learning/offline.js');
          const { retrainRequest } = await import('../learning/admin.js');
          outcome = await retrainOffline(config, model, retrainRequest(body), (line) => o.json || process.stderr.write(line + '\n'));
        }
        process.stdout.write(o.json ? JSON.stringify(outcome) + '\n' : describeOutcome(outcome));
        process.exitCode = outcome.outcome === 'promoted' || (outcome.dryRun && outcome.outcome === 'refused' && outcome.gate !== null) ? 0 : outcome.outcome === 'refused' ? 6 : 1;
      } catch (err) {
        fail(err);
      }
    });
}
