import path from 'node:path';
import type { Command } from 'commander';
import type { AuditRow, ModelSummary, VersionRow } from '../registry/index.js';
import { fail, formatBytes, table } from './output.js';
import { openState, type HomeOptions } from './state-client.js';

type Opts = HomeOptions & { json?: boolean };

/** Options shared by every state command. */
export function stateOptions(cmd: Command): Command {
  return cmd
    .option('--home <dir>', 'state directory (default: $EDGELOOP_HOME or ./.edgeloop)')
    .option('-c, --config <file>', 'device config, for its home')
    .option('--json', 'machine-readable output');
}

export function print(o: { json?: boolean }, value: unknown, human: () => string): void {
  process.stdout.write(o.json ? JSON.stringify(value, null, 2) + '\n' : human());
}

export function modelsTable(models: ModelSummary[]): string {
  if (models.length === 0) return 'no models installed\n';
  return table(
    ['model', 'serving', 'state', 'pinned', 'rollback to', 'versions'],
    models.map((m) => [m.name, m.serving?.version ?? '-', m.serving?.status ?? 'not serving', m.pinned ? 'yes' : 'no', m.previous?.version ?? '-', m.versions]),
  );
}

export function historyTable(rows: AuditRow[]): string {
  if (rows.length === 0) return 'no history\n';
  return table(
    ['when', 'action', 'from', 'to', 'who', 'why'],
    rows.map((r) => [r.at.replace('T', ' ').slice(0, 19), r.action, r.fromVersion ?? '-', r.toVersion ?? '-', r.actor, r.reason ?? '']),
  );
}

function versionsTable(rows: VersionRow[]): string {
  return table(
    ['version', 'status', 'source', 'runtime', 'weights', 'size', 'installed', 'note'],
    rows.map((v) => [v.version, v.status, v.source, v.runtime, v.quantization, formatBytes(v.bytes), v.createdAt.replace('T', ' ').slice(0, 19), v.statusReason ?? '']),
  );
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('model versions on this device');

  stateOptions(models.command('list').description('every model: what serves, its state, what a rollback would go back to')).action(async (o: Opts) => {
    try {
      const s = await openState(o);
      const rows = s.mode === 'daemon' ? await s.call<ModelSummary[]>('GET', '/models') : s.registry.listModels();
      print(o, rows, () => modelsTable(rows));
    } catch (err) {
      fail(err);
    }
  });

  stateOptions(models.command('show <model>').description('all versions of a model with status and source')).action(async (name: string, o: Opts) => {
    try {
      const s = await openState(o);
      const value = s.mode === 'daemon' ? await s.call<ModelSummary & { all: VersionRow[] }>('GET', `/models/${encodeURIComponent(name)}`) : { ...s.registry.summary(name), all: s.registry.versions(name) };
      print(o, value, () => `${value.name}  serving ${value.serving?.version ?? '-'} (${value.serving?.status ?? 'not serving'})  pinned: ${value.pinned ? 'yes' : 'no'}\n` + versionsTable(value.all));
    } catch (err) {
      fail(err);
    }
  });

  stateOptions(models.command('history <model>').description('every change to a model: what, from, to, who and why'))
    .option('--limit <n>', 'newest n entries', (v) => Number(v), 50)
    .action(async (name: string, o: Opts & { limit: number }) => {
      try {
        const s = await openState(o);
        const rows = s.mode === 'daemon' ? await s.call<AuditRow[]>('GET', `/models/${encodeURIComponent(name)}/history?limit=${o.limit}`) : s.registry.history(name, o.limit);
        print(o, rows, () => historyTable(rows));
      } catch (err) {
        fail(err);
      }
    });

  stateOptions(models.command('add <bundle>').description('install a bundle folder or a model.onnx (verified, copied atomically, staged)'))
    .option('--name <name>', 'model name for a bare .onnx')
    .option('--version <version>', 'version for a bare .onnx (default: hash prefix)')
    .option('--reason <text>', 'why, for the history')
    .addHelpText('after', '\nExample:\n  edgeloop models add ./digits-1.1.0 && edgeloop activate digits 1.1.0')
    .action(async (bundle: string, o: Opts & { name?: string; version?: string; reason?: string }) => {
      try {
        const s = await openState(o, { create: true });
        const abs = path.resolve(bundle);
        // The registry answers an identical re-install with the existing row: older than this call.
        const started = Date.now();
        const row =
          s.mode === 'daemon'
            ? await s.call<VersionRow>('POST', '/models', { path: abs, name: o.name, version: o.version, reason: o.reason })
            : await s.registry.install(abs, { actor: 'cli', source: 'manual', name: o.name, version: o.version, reason: o.reason });
        const already = Date.parse(row.createdAt) < started;
        print(o, o.json ? { ...row, alreadyInstalled: already } : row, () =>
          already
            ? `${row.model}@${row.version} is already installed (${row.status}), same content; nothing changed\n`
            : `installed ${row.model}@${row.version} (${row.status}); serve it with: edgeloop activate ${row.model} ${row.version}\n`,
        );
      } catch (err) {
        fail(err);
      }
    });
}
