/**
 * Start-up: from spawning `node <deployed flags> bin/edgeloop.js serve` (embedded broker, the demo
 * bundles: what `npm start` runs) to the first successful reply to a digits request over MQTT.
 * First start (a fresh state directory: the shipped bundles are imported) once per round, then
 * restarts on the kept state directory; medians over rounds. The breakdown comes from the
 * daemon's own log timestamps (JSON, level info) and a preload that notes when node has booted.
 *
 *   npx tsx scripts/bench/startup.ts [--rounds 5] [--restarts 2]   (needs dist/: npm run build)
 *       [--daemon-node-args='--v8-pool-size=4']   (investigation only: after the deployed flags)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { freePort } from '../../test/helpers/mosquitto.js';
import { deployedNodeFlags, stopChild } from './daemon-child.js';
import { fmt, isMain, met, standalone, table, type BenchResult, type TargetRow } from './report.js';
import { median } from './serving.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DEVICE = 'bench-startup';
const BOOT_MARK = 'edgeloop-bench-booted';
// Runs before the CLI's first module: when node itself is ready (a bench-only --import).
const PRELOAD = `data:text/javascript,process.stderr.write('${BOOT_MARK} '+Date.now()+'\\n')`;

export interface StartupOptions {
  rounds: number;
  /** Restarts on the kept state directory after each first start. */
  restarts: number;
  /** Extra node flags after the deployed ones (investigation only). */
  nodeArgs?: string[];
}

export const defaultStartupOptions: StartupOptions = { rounds: 5, restarts: 2 };

/** Milliseconds from spawn to each phase's end; undefined where the log had no such line. */
interface StartTimes {
  booted: number;
  starting: number;
  brokerConnected: number;
  digitsLoaded: number;
  firstAnswer: number;
  /** Every model loaded, the feedback connection, learning, the admin API and the retained status: after the first answer. */
  serving: number;
}

// Each model answers once it is loaded (src/daemon/daemon.ts): the broker and the request
// connection come up first, then the models load in turn, digits the third of the demo bundles.
const PHASES: [keyof StartTimes, string][] = [
  ['booted', 'node boot'],
  ['starting', 'imports, config (CLI and daemon modules)'],
  ['brokerConnected', 'state dir, registry, embedded broker up, request connection'],
  ['digitsLoaded', 'the bundles up to digits loaded and warmed up'],
  ['firstAnswer', 'first reply received by the client'],
];

/** Keep publishing a digits request (3.1.1 replyTo/id) until one is answered with predictions. */
async function firstAnswer(url: string, row: number[], until: number): Promise<number> {
  let client: mqtt.MqttClient | undefined;
  while (!client) {
    try {
      client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000 });
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const c = client;
  try {
    const replyTo = `bench/startup/${process.pid}`;
    await c.subscribeAsync(replyTo);
    return await new Promise<number>((resolve, reject) => {
      let id = 0;
      c.on('message', (_t, payload) => {
        if (payload.includes('"predictions"')) resolve(Date.now());
      });
      // Requests sent before the daemon subscribes are lost (QoS 0): resend until answered.
      const send = () => {
        if (Date.now() > until) return reject(new Error('no answer before the deadline'));
        c.publish(`edgeloop/${DEVICE}/infer/digits`, JSON.stringify({ id: ++id, replyTo, inputs: row }));
        timer = setTimeout(send, 10);
      };
      let timer = setTimeout(send, 0);
      c.once('close', () => clearTimeout(timer));
    });
  } finally {
    await c.endAsync(true);
  }
}

/** One start: spawn, first answer, then a clean stop (the next run may reuse the home). */
async function startOnce(home: string, row: number[], nodeArgs: string[]): Promise<StartTimes> {
  const port = await freePort();
  const args = [...deployedNodeFlags(), ...nodeArgs, '--import', PRELOAD, 'bin/edgeloop.js', 'serve', '--port', String(port), '--device-id', DEVICE, '--home', home, '--log-level', 'info', '--log-format', 'json'];
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let booted = NaN;
  let partial = '';
  child.stdout.on('data', (b: Buffer) => {
    const parts = (partial + b.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.on('data', (b: Buffer) => {
    const m = new RegExp(`${BOOT_MARK} (\\d+)`).exec(b.toString());
    if (m) booted = Number(m[1]);
  });
  try {
    const answered = await firstAnswer(`mqtt://127.0.0.1:${port}`, row, t0 + 60_000);
    const records = () => lines.map((l) => JSON.parse(l) as { msg: string; time: number; model?: string });
    // The rest of the start comes after the first answer: wait for it (bounded) to time it too.
    for (const until = Date.now() + 30_000; !records().some((r) => r.msg === 'edgeloop serving') && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    const at = (msg: string, model?: string) => (records().find((r) => r.msg === msg && (model === undefined || r.model === model))?.time ?? NaN) - t0;
    return {
      booted: booted - t0,
      starting: at('edgeloop starting'),
      brokerConnected: at('connected to mqtt broker'),
      digitsLoaded: at('model loaded', 'digits'),
      firstAnswer: answered - t0,
      serving: at('edgeloop serving'),
    };
  } finally {
    await stopChild(child);
  }
}

export async function runStartup(o: StartupOptions = defaultStartupOptions): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const row = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows[0];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-startup-'));
  const first: StartTimes[] = [];
  const again: StartTimes[] = [];
  try {
    for (let i = 0; i < o.rounds; i++) {
      const home = path.join(tmp, `home-${i}`);
      first.push(await startOnce(home, row, o.nodeArgs ?? []));
      for (let k = 0; k < o.restarts; k++) again.push(await startOnce(home, row, o.nodeArgs ?? []));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const ms = (x: number) => (Number.isFinite(x) ? fmt(x) : 'n/a');
  // Each phase: the median of its own duration (end of the phase before to its end), per run.
  const phaseRows = PHASES.map(([key, label], i) => {
    const dur = (runs: StartTimes[]) => median(runs.map((t) => t[key] - (i === 0 ? 0 : t[PHASES[i - 1][0]])));
    return [label, ms(dur(first)), ms(dur(again))];
  });
  const total = (runs: StartTimes[]) => median(runs.map((t) => t.firstAnswer));
  const md = [
    `### Start-up: \`node ${[...deployedNodeFlags(), ...(o.nodeArgs ?? [])].join(' ')} bin/edgeloop.js serve\` (embedded broker, demo bundles) to the first answer`,
    '',
    table(
      ['phase', `first start, ms (median of ${first.length})`, `restart, ms (median of ${again.length})`],
      [...phaseRows, ['**spawn to first answer**', `**${ms(total(first))}**`, `**${ms(total(again))}**`]],
    ),
    '',
    `Per run, spawn to first answer: first start ${first.map((t) => ms(t.firstAnswer)).join(', ')} ms; restart ${again.map((t) => ms(t.firstAnswer)).join(', ')} ms. ` +
      `Every bundle loaded and the daemon serving in full (feedback connection, learning, admin API, retained status: \`edgeloop serving\`), after the first answer: ` +
      `${ms(median(first.map((t) => t.serving)))} ms first start, ${ms(median(again.map((t) => t.serving)))} ms restart (medians). ` +
      'Phases from the daemon\'s log timestamps (each the median of its own duration, so they need not add up to the total); ' +
      'the client retries its connection and its request every 10 ms until the daemon answers.',
  ].join('\n');
  const targets: TargetRow[] = [['start-up: spawn to first answer, demo bundles (first start; restart)', `${ms(total(first))} ms; ${ms(total(again))} ms`, '< 1000 ms', met(total(first) < 1000 && total(again) < 1000)]];
  return { md, targets };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, restarts: { type: 'string' }, 'daemon-node-args': { type: 'string' } } });
  const d = defaultStartupOptions;
  const nodeArgs = values['daemon-node-args']?.split(' ').filter(Boolean);
  runStartup({ rounds: Number(values.rounds ?? d.rounds), restarts: Number(values.restarts ?? d.restarts), nodeArgs }).then(
    (r) => console.log(standalone(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
