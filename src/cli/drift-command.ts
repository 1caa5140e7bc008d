import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readConfigFile } from '../config/index.js';
import { ADMIN_SOCKET } from '../daemon/admin-server.js';
import { DriftStore, buildReport, driftOptions, renderReport, reportSvg, type DriftStatus, type DriftThresholds } from '../drift/index.js';
import { EdgeloopError } from '../errors.js';
import { DB_FILE } from '../store/index.js';
import { print, stateOptions } from './models-command.js';
import { fail, table } from './output.js';
import { openState, resolveHome, type HomeOptions } from './state-client.js';

type Opts = HomeOptions & { json?: boolean };

/** "24h", "30m", "7d", "90s" ago, or an ISO date, as epoch ms. */
export function parseSince(v: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(v.trim());
  if (m) return now - Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new EdgeloopError('EDGELOOP_USAGE', `'--since' must be a duration such as 24h, 30m, 7d or an ISO date, got '${v}'`);
  return t;
}

/** The drift store of the state directory, read-only: WAL lets it sit beside a running daemon. */
function openStore(o: HomeOptions): DriftStore {
  const home = resolveHome(o);
  if (!existsSync(path.join(home, DB_FILE))) throw new EdgeloopError('EDGELOOP_USAGE', `no Edgeloop state in ${home} (start the daemon once, or pass --home)`);
  return DriftStore.open(home, { readonly: true });
}

/** Live monitor state from the daemon when it runs and knows the route; undefined otherwise (the CLI then reads SQLite only). */
async function liveStatus(o: HomeOptions): Promise<DriftStatus | undefined> {
  if (!existsSync(path.join(resolveHome(o), ADMIN_SOCKET))) return undefined;
  try {
    const s = await openState(o);
    return s.mode === 'daemon' ? await s.call<DriftStatus>('GET', '/drift') : undefined;
  } catch {
    return undefined;
  }
}

function thresholds(o: HomeOptions): DriftThresholds {
  const file = o.config ? (readConfigFile(o.config) as { drift?: Parameters<typeof driftOptions>[0] }) : {};
  return driftOptions(file.drift ?? {}).thresholds;
}

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');

export function registerDrift(program: Command): void {
  const drift = program.command('drift').description('input and prediction drift against each model’s reference profile');

  stateOptions(drift.command('status').description('every monitored model: windows, streaks, the open alert'))
    .addHelpText('after', '\nExample:\n  edgeloop drift status --json')
    .action(async (o: Opts) => {
      try {
        const store = openStore(o);
        const states = store.states();
        const counts = new Map(store.counts().map((c) => [c.model, c]));
        const live = await liveStatus(o);
        const models = states.map((s) => {
          const c = counts.get(s.model);
          const l = live?.models.find((m) => m.model === s.model);
          return {
            model: s.model,
            version: s.version,
            windows: c?.windows ?? 0,
            rows: c?.rows ?? 0,
            lastWindow: c?.last ? new Date(c.last).toISOString() : null,
            consecutiveDrifting: s.consecutiveDrifting,
            consecutiveClean: s.consecutiveClean,
            openWindowRows: l?.openWindow.rows ?? null,
            alert: s.active ? { id: s.active.id, raisedAt: new Date(s.active.raisedAt).toISOString(), message: s.active.message, features: s.active.topFeatures.map((f) => f.name) } : null,
          };
        });
        for (const l of live?.models ?? []) {
          if (!models.some((m) => m.model === l.model)) models.push({ model: l.model, version: l.version, windows: 0, rows: 0, lastWindow: null, consecutiveDrifting: l.consecutiveDrifting, consecutiveClean: l.consecutiveClean, openWindowRows: l.openWindow.rows, alert: null });
        }
        store.close();
        print(o, { daemon: live ? 'running' : 'not running or not reporting drift', models }, () => {
          if (models.length === 0) return 'no drift data yet: models need a reference profile (edgeloop profile) and traffic\n';
          return table(
            ['model', 'version', 'state', 'windows', 'rows', 'last window', 'streak', 'open', 'alert'],
            models.map((m) => [
              m.model,
              m.version,
              m.alert ? 'ALERT' : m.consecutiveDrifting > 0 ? 'drifting' : 'ok',
              m.windows,
              m.rows,
              iso(m.lastWindow ? Date.parse(m.lastWindow) : null),
              m.consecutiveDrifting > 0 ? `${m.consecutiveDrifting} drifting` : `${m.consecutiveClean} clean`,
              m.openWindowRows ?? '-',
              m.alert ? `#${m.alert.id} ${m.alert.features.join(', ')}` : '-',
            ]),
          );
        });
      } catch (err) {
        fail(err);
      }
    });

  stateOptions(drift.command('report <model>').description('most drifted features, alerts, and scores over time'))
    .option('--since <when>', 'windows since a duration ago (24h, 30m, 7d) or an ISO date')
    .option('--feature <name>', 'one feature in detail: its histogram vs the reference and its statistics over time')
    .option('--top <n>', 'features charted', (v) => Number(v), 3)
    .option('--rows <n>', 'features listed', (v) => Number(v), 10)
    .option('--svg <file>', "also write the chart as an SVG file (the PSI overview, or with --feature that feature's statistics)")
    .addHelpText('after', '\nExamples:\n  edgeloop drift report digits --since 24h\n  edgeloop drift report digits --feature pixel_3_4 --svg drift.svg')
    .action(async (model: string, o: Opts & { since?: string; feature?: string; top: number; rows: number; svg?: string }) => {
      try {
        const since = o.since ? parseSince(o.since) : undefined;
        const store = openStore(o);
        const known = store.counts().some((c) => c.model === model) || store.states().some((s) => s.model === model);
        if (!known) {
          store.close();
          throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `no drift data for model '${model}' (see edgeloop drift status)`);
        }
        const report = buildReport(store, model, { since, feature: o.feature, top: o.top });
        store.close();
        if (o.feature && !report.features.some((f) => f.name === o.feature)) {
          throw new EdgeloopError('EDGELOOP_USAGE', `'--feature' ${o.feature} is not a monitored feature of ${model}; the most drifted are ${report.features.slice(0, 5).map((f) => f.name).join(', ')}`);
        }
        const t = thresholds(o);
        if (o.svg) writeFileSync(o.svg, reportSvg(report, t));
        print(o, report, () => renderReport(report, { rows: o.rows, table, thresholds: t }) + (o.svg ? `chart written to ${o.svg}\n` : ''));
      } catch (err) {
        fail(err);
      }
    });
}
