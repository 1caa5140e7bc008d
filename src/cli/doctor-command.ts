import type { Command } from 'commander';
import { readConfigFile, resolveConfig, type EdgeloopConfigInput, type ResolvedConfig } from '../config/index.js';
import { runDoctor, type CheckResult } from '../doctor/index.js';
import { EXIT, table } from './output.js';

interface DoctorOpts {
  config?: string;
  home?: string;
  broker?: string;
  profile?: string;
  timeout: number;
  json?: boolean;
}

const MARK: Record<CheckResult['status'], string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: '-' };

function text(results: CheckResult[]): string {
  const rows = results.map((r) => [MARK[r.status], r.title, r.detail]);
  const hints = results.filter((r) => r.hint && (r.status === 'fail' || r.status === 'warn')).map((r) => `  ${r.title}: ${r.hint}`);
  const failed = results.filter((r) => r.status === 'fail').length;
  const summary = failed ? `${failed} check(s) failed` : 'all checks passed';
  return table(['', 'check', 'result'], rows) + (hints.length ? `\nwhat to do:\n${hints.join('\n')}\n` : '') + `\n${summary}\n`;
}

/**
 * `edgeloop doctor`: what is wrong with this device, one line per check. Exit 0 when nothing
 * failed (warnings allowed), 1 otherwise; with --json the report is { ok, checks } on stdout.
 */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check this device: runtime, native modules, execution providers, hardware, broker, state, disk, clock, keys, release repository')
    .option('-c, --config <file>', 'device config (JSON), as given to serve')
    .option('--home <dir>', 'state directory')
    .option('--broker <url>', 'external broker to check instead of the config one')
    .option('--profile <name>', "device profile, as given to serve ('auto' or a name)")
    .option('--timeout <ms>', 'bound on each network probe', (v) => Number(v), 3000)
    .option('--json', 'machine-readable report')
    .addHelpText('after', '\nExamples:\n  edgeloop doctor --config /etc/edgeloop/device.json\n  edgeloop doctor --json | jq \'.checks[] | select(.status == "fail")\'\n\nExit codes: 0 nothing failed (warnings allowed), 1 a check failed.')
    .action(async (o: DoctorOpts) => {
      let config: ResolvedConfig | undefined;
      let results: CheckResult[];
      try {
        const file = o.config ? readConfigFile(o.config) : {};
        const overrides: EdgeloopConfigInput = { home: o.home, profile: o.profile, broker: { url: o.broker } };
        config = resolveConfig(file, overrides);
      } catch (err) {
        results = [{ id: 'config', title: 'device config', status: 'fail', detail: (err as Error).message, hint: 'fix the config file; `edgeloop serve` would refuse it too' }];
      }
      if (config) {
        const configLine: CheckResult = { id: 'config', title: 'device config', status: 'ok', detail: `${o.config ?? '(defaults)'}; device ${config.deviceId}, home ${config.home}` };
        results = [configLine, ...(await runDoctor({ config, timeoutMs: o.timeout, now: new Date() }))];
      }
      const ok = !results!.some((r) => r.status === 'fail');
      process.stdout.write(o.json ? `${JSON.stringify({ ok, checks: results! }, null, 2)}\n` : text(results!));
      // exit, not return: a probe's leftover handle (a tfjs backend, a socket) must not keep the process up.
      process.exit(ok ? EXIT.ok : EXIT.failure);
    });
}
