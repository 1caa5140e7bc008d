import type { Command } from 'commander';
import { readConfigFile, resolveConfig } from '../config/index.js';
import { EdgeloopError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import type { RoundReport, SyncProgress, SyncStatus } from '../sync/index.js';
import { stateOptions, print } from './models-command.js';
import { fail, formatBytes, table } from './output.js';
import { openState, type HomeOptions } from './state-client.js';

type Opts = HomeOptions & { json?: boolean; now?: boolean; timeout: number };

const OFF: SyncStatus = { enabled: false, channel: null, repoUrl: null, serial: null, expires: null, acceptedAt: null, lastRound: null, running: null, models: [] };
const when = (iso: string | null | undefined) => (iso ? iso.replace('T', ' ').slice(0, 19) : '-');

function statusText(s: SyncStatus): string {
  if (!s.enabled && s.models.length === 0) return 'fleet sync is off (no sync section in the config)\n';
  const round = s.lastRound;
  const head =
    `channel ${s.channel ?? '-'} at ${s.repoUrl ?? '-'}  serial ${s.serial ?? '-'} (accepted ${when(s.acceptedAt)}, expires ${when(s.expires)})\n` +
    (round ? `last round #${round.id} (${round.trigger}) ${when(round.finishedAt)}: metadata ${round.metadata}${round.error ? ` - ${round.error.message} [${round.error.code}]` : ''}\n` : 'no sync round yet\n');
  if (s.models.length === 0) return head;
  return head + table(['model', 'release', 'result', 'from', 'serial', 'when', 'note'], s.models.map((m) => [m.model, m.version, m.outcome, m.from ?? '-', m.serial, when(m.at), m.code ? `${m.message} [${m.code}]` : (m.message ?? '')]));
}

function roundText(r: RoundReport): string {
  const head = `sync round #${r.id}: metadata ${r.metadata}${r.serial !== null ? ` (serial ${r.serial})` : ''}${r.error ? ` - ${r.error.message} [${r.error.code}]` : ''}\n`;
  if (r.models.length === 0) return head;
  return head + table(['model', 'release', 'result', 'from', 'note'], r.models.map((m) => [m.model, m.version, m.outcome, m.from ?? '-', m.code ? `${m.message} [${m.code}]` : (m.message ?? '')]));
}

/** A one-line progress bar on stderr, redrawn in place (TTY only). */
function drawProgress(p: SyncProgress | null): void {
  if (!process.stderr.isTTY) return;
  const width = 28;
  let line = '';
  if (p) {
    const share = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
    const bar = '#'.repeat(Math.round(share * width)).padEnd(width, '-');
    const what = p.model ? `${p.model}@${p.version} ${p.phase}` : p.phase;
    line = `[${bar}] ${String(Math.round(share * 100)).padStart(3)}%  ${what}  ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}`;
  }
  process.stderr.write(`\r\x1b[2K${line}`);
}

/** Exit non-zero when the round refused or failed something, with the first problem's code. */
function failIfProblem(r: RoundReport): void {
  const problem = r.error ?? r.models.find((m) => m.outcome === 'rejected' || m.outcome === 'failed');
  if (problem?.code) fail(new EdgeloopError(problem.code, 'message' in problem && problem.message ? problem.message : 'sync round failed'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One round through the running daemon: start it, follow its progress, fetch its report. */
async function roundViaDaemon(call: <T>(m: 'GET' | 'POST', p: string, b?: unknown) => Promise<T>, timeoutSeconds: number): Promise<RoundReport> {
  const { round } = await call<{ round: number }>('POST', '/sync', {});
  const until = Date.now() + timeoutSeconds * 1000;
  while (Date.now() < until) {
    const st = await call<SyncStatus>('GET', '/sync');
    if (st.lastRound && st.lastRound.id >= round) {
      drawProgress(null);
      return st.lastRound;
    }
    drawProgress(st.running && st.running.round === round ? st.running : null);
    await sleep(250);
  }
  throw new EdgeloopError('EDGELOOP_TIMEOUT', `sync round #${round} did not finish within ${timeoutSeconds} s (it goes on in the daemon; see edgeloop sync status)`);
}

export function registerSync(program: Command): void {
  stateOptions(program.command('sync [what]').description("fleet sync: 'status' (default) shows the last result per model; --now runs a round"))
    .option('--now', 'check the release repository now: verify, download, install on trial (through the daemon when it runs)')
    .option('--timeout <seconds>', 'give up waiting for the round after this long', (v) => Number(v), 3600)
    .addHelpText('after', '\nExamples:\n  edgeloop sync --now          # one round, with a progress bar\n  edgeloop sync status --json  # last result per model')
    .action(async (what: string | undefined, o: Opts) => {
      try {
        if (what !== undefined && what !== 'status') throw new EdgeloopError('EDGELOOP_USAGE', `unknown sync action '${what}' (use 'status', or --now)`);
        const s = await openState(o);
        if (s.mode === 'daemon') {
          if (o.now) {
            const report = await roundViaDaemon(s.call, o.timeout);
            print(o, report, () => roundText(report));
            failIfProblem(report);
          } else {
            const st = await s.call<SyncStatus>('GET', '/sync');
            print(o, st, () => statusText(st));
          }
          return;
        }
        // Offline: the daemon is not running; work on the state directory with the device config.
        const config = o.config ? resolveConfig(readConfigFile(o.config), { home: o.home }) : undefined;
        if (!o.now) {
          const { SyncStore } = await import('../sync/index.js');
          const store = new SyncStore(s.registry.db);
          const st: SyncStatus = { ...OFF, enabled: Boolean(config?.sync), channel: config?.sync?.channel ?? null, repoUrl: config?.sync?.repoUrl ? redactUrl(config.sync.repoUrl) : null, lastRound: store.lastRound(), models: store.results() };
          const ch = st.channel ? store.channel(st.channel) : undefined;
          Object.assign(st, { serial: ch?.serial ?? null, expires: ch?.expires ?? null, acceptedAt: ch?.acceptedAt ?? null });
          print(o, st, () => `daemon: not running (state read from ${s.home})\n` + statusText(st));
          return;
        }
        if (!config?.sync) throw new EdgeloopError('EDGELOOP_USAGE', "the daemon is not running: pass --config with the device config's 'sync' section to sync offline");
        const { SyncService, offlineHost } = await import('../sync/index.js');
        const { loadServedModel } = await import('../daemon/load-models.js');
        const { FeedbackStore } = await import('../feedback/index.js');
        // Offline installs pass the same quality gate as the daemon's (anchor set + holdout).
        const labelled = FeedbackStore.open(s.home);
        const gate = { policy: config.registry.gate, load: (dir: string) => loadServedModel(dir, config, { ...config.serving }), labelled, maxBatch: config.serving.maxBatch };
        const service = await SyncService.create({ config: config.sync, deviceId: config.deviceId, home: s.home, registry: s.registry, host: offlineHost(s.registry, gate) });
        const round = service.requestRound('manual', { unconditional: true });
        const timer = setInterval(() => drawProgress(service.status().running), 250);
        const report = await round.done.finally(() => {
          clearInterval(timer);
          drawProgress(null);
        });
        await service.stop();
        labelled.close();
        print(o, report, () => roundText(report) + 'recorded offline; the daemon serves the new versions (on trial) when it starts\n');
        failIfProblem(report);
      } catch (err) {
        fail(err);
      }
    });
}
