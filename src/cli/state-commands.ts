import type { Command } from 'commander';
import { readConfigFile, resolveConfig } from '../config/index.js';
import type { Change, Registry } from '../registry/index.js';
import { modelsTable, print, stateOptions } from './models-command.js';
import { fail, table } from './output.js';
import { openState, verifyOnly, type HomeOptions } from './state-client.js';

type Opts = HomeOptions & { json?: boolean; reason?: string; force?: boolean };

function describeChange(c: Change, mode: string): string {
  const where = mode === 'daemon' ? 'now serving' : 'recorded; the daemon applies it when it starts';
  return `${c.model}: ${c.action} ${c.from ?? '-'} -> ${c.to ?? '-'} (${where})\n`;
}

interface LiveModel {
  name: string;
  version: string;
  state: string;
  pinned: boolean;
  runtime: string;
  backend: string;
  requests: number;
  failed: number;
  p50Ms: number | null;
  p99Ms: number | null;
  meanBatchRows: number | null;
  liveAccuracy?: { rows: number; accuracy?: number; mae?: number; alert: unknown } | null;
}

const ms = (v: number | null) => (v === null ? '-' : v.toFixed(2));
/** Live accuracy (or MAE) over labelled feedback, "!" when its accuracy alert is open. */
const liveCell = (l: LiveModel['liveAccuracy']) =>
  !l || l.rows === 0 ? '-' : `${l.accuracy !== undefined ? `${(l.accuracy * 100).toFixed(1)}%` : `MAE ${l.mae?.toPrecision(3)}`} (${l.rows})${l.alert ? ' !' : ''}`;

/** Offline, the CLI gates too: it loads the target and the serving version with the device config's engines. */
async function activateOffline(registry: Registry, name: string, version: string, o: Opts): Promise<Change> {
  const config = resolveConfig(o.config ? readConfigFile(o.config) : {}, { home: o.home });
  // Loaded here, not at start-up: only an offline activation runs models in the CLI.
  const [{ loadServedModel }, { activateGatedOffline }] = await Promise.all([import('../daemon/load-models.js'), import('../quality/index.js')]);
  return activateGatedOffline(registry, name, version, { actor: 'cli', reason: o.reason, force: o.force }, {
    policy: config.registry.gate,
    load: (dir) => loadServedModel(dir, config, { ...config.serving }),
    maxBatch: config.serving.maxBatch,
  });
}

export function registerStateCommands(program: Command): void {
  stateOptions(program.command('status').description('what runs on this device: daemon, broker, models, versions, traffic')).action(async (o: Opts) => {
    try {
      const s = await openState(o);
      if (s.mode === 'offline') {
        const models = s.registry.listModels();
        print(o, { daemon: 'not running', home: s.home, models }, () => `daemon: not running (state read from ${s.home})\n` + modelsTable(models));
        return;
      }
      const st = await s.call<Record<string, unknown> & { models: LiveModel[] }>('GET', '/status');
      print(o, st, () => {
        const head = `device ${st.deviceId}  daemon: running (pid ${st.pid}, up ${st.uptimeSeconds} s, ${Math.round(Number(st.rssBytes) / 2 ** 20)} MB)  broker: ${st.broker === 'embedded' ? `embedded ${st.brokerUrl}` : st.brokerUrl}\n`;
        if (st.models.length === 0) return head + 'no models served\n';
        return (
          head +
          table(
            ['model', 'version', 'state', 'pinned', 'runtime', 'backend', 'requests', 'failed', 'p50 ms', 'p99 ms', 'batch', 'live acc.'],
            st.models.map((m) => [m.name, m.version, m.state, m.pinned ? 'yes' : 'no', m.runtime, m.backend, m.requests, m.failed, ms(m.p50Ms), ms(m.p99Ms), m.meanBatchRows?.toFixed(1) ?? '-', liveCell(m.liveAccuracy)]),
          )
        );
      });
    } catch (err) {
      fail(err);
    }
  });

  stateOptions(program.command('activate <model> <version>').description('serve an installed version (on trial; rolled back automatically if it fails)'))
    .option('--reason <text>', 'why, for the history')
    .option('--force', 'skip the quality gate; also a version rejected earlier')
    .addHelpText('after', '\nThe version is scored on labelled rows first (its anchor set, the device\'s holdout) and refused\nwith exit code 6 when it is below registry.gate.minAccuracy or worse than the serving version.\n\nExample:\n  edgeloop activate digits 1.1.0 --reason "retrained on site data"')
    .action(async (name: string, version: string, o: Opts) => {
      try {
        const s = await openState(o);
        const change =
          s.mode === 'daemon'
            ? await s.call<Change>('POST', `/models/${encodeURIComponent(name)}/activate`, { version, reason: o.reason, force: o.force })
            : await activateOffline(s.registry, name, version, o);
        print(o, change, () => describeChange(change, s.mode));
      } catch (err) {
        fail(err);
      }
    });

  stateOptions(program.command('rollback <model>').description('go back to the previous version (or --to one); the version left is marked rejected'))
    .option('--to <version>', 'a specific installed version')
    .option('--reason <text>', 'why, for the history')
    .option('--force', 'also to a version rejected earlier')
    .addHelpText('after', '\nExample:\n  edgeloop rollback digits --reason "misreads 7s since 1.1.0"')
    .action(async (name: string, o: Opts & { to?: string }) => {
      try {
        const s = await openState(o);
        const change =
          s.mode === 'daemon'
            ? await s.call<Change>('POST', `/models/${encodeURIComponent(name)}/rollback`, { to: o.to, reason: o.reason, force: o.force })
            : await s.registry.rollback(name, { actor: 'cli', to: o.to, reason: o.reason, force: o.force, prepare: verifyOnly });
        print(o, change, () => describeChange(change, s.mode));
      } catch (err) {
        fail(err);
      }
    });

  for (const pinned of [true, false]) {
    stateOptions(program.command(`${pinned ? 'pin' : 'unpin'} <model>`).description(pinned ? 'never change this model automatically (fleet, fine-tuning, gc)' : 'allow automatic changes again'))
      .option('--reason <text>', 'why, for the history')
      .action(async (name: string, o: Opts) => {
        try {
          const s = await openState(o);
          const change =
            s.mode === 'daemon' ? await s.call<Change>('POST', `/models/${encodeURIComponent(name)}/${pinned ? 'pin' : 'unpin'}`, { reason: o.reason }) : s.registry.setPinned(name, pinned, 'cli', o.reason);
          print(o, change, () => `${name}: ${pinned ? 'pinned' : 'unpinned'}\n`);
        } catch (err) {
          fail(err);
        }
      });
  }

  stateOptions(program.command('gc').description('delete old versions: keep the newest K per model, the serving one, the rollback target, and pinned models'))
    .option('--keep <k>', 'versions to keep per model', (v) => Number(v), 5)
    .action(async (o: Opts & { keep: number }) => {
      try {
        const s = await openState(o);
        const removed = s.mode === 'daemon' ? await s.call<{ model: string; version: string }[]>('POST', '/gc', { keep: o.keep }) : await s.registry.gc(o.keep, 'cli');
        print(o, removed, () => (removed.length ? table(['model', 'removed version'], removed.map((r) => [r.model, r.version])) : 'nothing to remove\n'));
      } catch (err) {
        fail(err);
      }
    });
}

