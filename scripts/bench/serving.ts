/**
 * Serving benchmark over a real Mosquitto on loopback: the daemon as a child process
 * (`node bin/edgeloop.js serve`), driven by a closed-loop load generator in another child
 * process, against an echo responder that does no work (the MQTT ceiling), plus an in-process
 * daemon run whose batcher statistics give the mean batch size.
 *
 *   npx tsx scripts/bench/serving.ts [--clients 8] [--window 4] [--seconds 8] [--rounds 2] [--light 2000] [--cpu-prof DIR]
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pino from 'pino';
import { resolveConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import type { LoadMessage, LoadOptions, LoadResult } from './load-gen.js';
import { fmt, isMain, met, percentiles, table } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const samplesFile = path.join(root, 'test/fixtures/digits-sample.json');
const MODEL = 'digits';
// Each responder has its own device id, so the idle one never sees the other's traffic.
const DAEMON_ID = 'bench';
const ECHO_ID = 'bench-echo';
const INPROC_ID = 'bench-inproc';
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in 10 ms ticks

export interface ServingOptions {
  clients: number;
  window: number;
  warmupMs: number;
  measureMs: number;
  /** Daemon and echo runs alternate this many times: on a noisy machine one pair can mislead. */
  rounds: number;
  lightRequests: number;
  /** Write a V8 CPU profile of the daemon child here (investigation only). */
  cpuProfDir?: string;
}

export const defaultServingOptions: ServingOptions = { clients: 8, window: 4, warmupMs: 2000, measureMs: 8000, rounds: 2, lightRequests: 2000 };

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
  } catch {
    return NaN;
  }
}

/** Sample a process's VmRSS every 100 ms; peakKb() is the highest seen so far. */
function watchRss(pid: number): { peakKb(): number; stop(): void } {
  let peak = 0;
  const sample = () => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      // gone: keep the last peak
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  return { peakKb: () => (sample(), peak), stop: () => clearInterval(timer) };
}

export interface LoadRun {
  result: LoadResult;
  /** Share of one core each watched process used while measuring; the load generator last. */
  cpu: number[];
}

/**
 * Run the load generator in its own process, measuring the CPU of `watch` (and of the
 * generator) over the measured window; `onPhase` sees warm-up end and measure end.
 */
export function load(opts: LoadOptions, watch: number[], onPhase?: (p: 'measure' | 'drain') => void): Promise<LoadRun> {
  const child = fork(path.join(root, 'scripts/bench/load-gen.ts'), [JSON.stringify(opts)], { cwd: root, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pids = [...watch, child.pid!];
  const limitMs = opts.warmupMs + opts.measureMs + 30_000;
  let cpu0: number[] = [];
  let t0 = 0;
  let cpu: number[] = [];
  return new Promise<LoadRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`load generator still running after ${limitMs} ms`));
    }, limitMs);
    child.on('message', (m: LoadMessage) => {
      if (m.type === 'phase') {
        if (m.phase === 'measure') {
          t0 = performance.now();
          cpu0 = pids.map(cpuSeconds);
        } else {
          const secs = (performance.now() - t0) / 1000;
          cpu = pids.map((pid, i) => (cpuSeconds(pid) - cpu0[i]) / secs);
        }
        onPhase?.(m.phase);
      } else if (m.type === 'result') resolve({ result: m.result, cpu });
      else reject(new Error(`load generator failed: ${m.message}`));
    });
    // 'close', not 'exit': it comes after the last IPC message has been read.
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`load generator exited (${code}) without a result`)); // no-op once resolved
    });
  });
}

/** Wait until the daemon's retained status says online (it is published after subscribing). */
async function waitOnline(url: string, deviceId: string, timeoutMs = 60_000): Promise<void> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon not online after ${timeoutMs} ms`)), timeoutMs);
      client.on('message', (_t, payload) => {
        if ((JSON.parse(payload.toString()) as { online?: boolean }).online) {
          clearTimeout(timer);
          resolve();
        }
      });
      void client.subscribeAsync(`edgeloop/${deviceId}/status`);
    });
  } finally {
    await client.endAsync(true);
  }
}

/** The echo responder as a child process, answering on edgeloop/{deviceId}/infer/+ with `reply`. */
export async function startEcho(url: string, deviceId: string, reply: string): Promise<ChildProcess> {
  const echo = fork(path.join(root, 'scripts/bench/echo-responder.ts'), [JSON.stringify({ url, filter: `edgeloop/${deviceId}/infer/+`, reply })], {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    echo.once('message', () => resolve());
    echo.once('exit', (code) => reject(new Error(`echo responder exited (${code})`)));
  });
  return echo;
}

export function stopChild(child: ChildProcess, timeoutMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

export async function runServing(o: ServingOptions = defaultServingOptions): Promise<string> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const mosquitto = await startMosquitto();
  const broker = mosquitto.process.pid!;
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-'));
  const heavyFor = (id: string): LoadOptions => ({
    url: mosquitto.url,
    topic: `edgeloop/${id}/infer/${MODEL}`,
    clients: o.clients,
    window: o.window,
    warmupMs: o.warmupMs,
    measureMs: o.measureMs,
    maxMeasured: 2_000_000,
    lostAfterMs: 6000, // longer than the daemon's 5 s timeout: a timeout shows as a failure, not a loss
    samplesFile,
  });
  const lightFor = (id: string): LoadOptions => ({ ...heavyFor(id), clients: 1, window: 1, warmupMs: 1000, measureMs: 30_000, maxMeasured: o.lightRequests });
  const children: ChildProcess[] = [];
  let rss: ReturnType<typeof watchRss> | undefined;
  let inproc: Daemon | undefined;
  try {
    // The daemon as users run it.
    const profArgs = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
    const daemon = spawn(process.execPath, [...profArgs, 'bin/edgeloop.js', 'serve', '--broker', mosquitto.url, '--device-id', DAEMON_ID, '--log-level', 'warn', '--home', path.join(home, 'daemon')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(daemon);
    let daemonLog = '';
    const keep = (b: Buffer) => (daemonLog = (daemonLog + b.toString()).slice(-4000));
    daemon.stdout!.on('data', keep);
    daemon.stderr!.on('data', keep);
    await waitOnline(mosquitto.url, DAEMON_ID).catch((err: Error) => {
      throw new Error(`${err.message}; daemon output:\n${daemonLog}`);
    });
    await new Promise((r) => setTimeout(r, 300));
    rss = watchRss(daemon.pid!);
    const idleRssKb = rss.peakKb();
    const lightDaemon = await load(lightFor(DAEMON_ID), [daemon.pid!, broker]);

    // The echo ceiling: same broker, clients and payloads, replying with a real reply's text.
    const reply = lightDaemon.result.sampleReply;
    if (!reply) throw new Error(`the daemon sent no successful reply: ${lightDaemon.result.firstError ?? 'no reply at all'}`);
    const echo = await startEcho(mosquitto.url, ECHO_ID, reply);
    children.push(echo);
    const lightEcho = await load(lightFor(ECHO_ID), [echo.pid!, broker]);

    // Closed-loop load, daemon and echo alternating so that both see the same machine weather.
    const heavyDaemon: LoadRun[] = [];
    const heavyEcho: LoadRun[] = [];
    for (let i = 0; i < o.rounds; i++) {
      heavyDaemon.push(await load(heavyFor(DAEMON_ID), [daemon.pid!, broker]));
      heavyEcho.push(await load(heavyFor(ECHO_ID), [echo.pid!, broker]));
    }
    const peakRssKb = rss.peakKb();
    rss.stop();
    await stopChild(echo);
    const exit = await stopChild(daemon);
    if (exit !== 0) console.error(`daemon exited with ${exit}; last log lines:\n${daemonLog}`);
    else if (daemonLog.trim()) console.error(`daemon warnings:\n${daemonLog.trim()}`);

    // In-process daemon, same load: the only way to read batcher stats without a stats topic.
    inproc = new Daemon({
      config: resolveConfig({ deviceId: INPROC_ID, home: path.join(home, 'inproc'), modelsDir: path.join(root, 'models'), logLevel: 'warn', broker: { url: mosquitto.url } }, {}, {}),
      log: pino({ level: 'warn' }),
    });
    await inproc.start();
    const stats = inproc.servedModels().get(MODEL)!.stats;
    let at = { ...stats };
    let batch = { batches: 0, rows: 0, requests: 0 };
    const inprocRun = await load(heavyFor(INPROC_ID), [process.pid, broker], (phase) => {
      if (phase === 'measure') at = { ...stats };
      else batch = { batches: stats.batches - at.batches, rows: stats.rows - at.rows, requests: stats.requests - at.requests };
    });

    return report(o, { heavyDaemon, heavyEcho, inprocRun, lightDaemon, lightEcho, idleRssKb, peakRssKb, batch, echoReplyBytes: Buffer.byteLength(reply) });
  } finally {
    rss?.stop(); // a live interval would keep this process from exiting
    await inproc?.stop('bench done').catch(() => undefined);
    for (const c of children) await stopChild(c, 5000);
    await mosquitto.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rate = (r: LoadResult) => r.measured / (r.measuredMs / 1000);
const pct = (x: number) => `${fmt(x * 100)}%`;

/** One table row for one or more runs of the same path: median rate, pooled latencies, summed counts. */
function summary(runs: LoadRun[]) {
  const latencies = runs.flatMap((r) => r.result.latencies);
  const [p50, p99] = percentiles(latencies, [50, 99]);
  const sum = (f: (r: LoadResult) => number) => runs.reduce((n, r) => n + f(r.result), 0);
  // CPU is counted in 10 ms ticks: meaningless over a window shorter than a second.
  const cpu = runs[0].result.measuredMs < 1000 ? '–' : runs[0].cpu.map((_, i) => pct(runs.reduce((s, r) => s + r.cpu[i], 0) / runs.length)).join(' / ');
  return { rps: median(runs.map((r) => rate(r.result))), rounds: runs.map((r) => fmt(rate(r.result))).join(', '), p50, p99, sent: sum((r) => r.sent), failed: sum((r) => r.failed), lost: sum((r) => r.lost), cpu, measured: sum((r) => r.measured) };
}

function report(
  o: ServingOptions,
  r: {
    heavyDaemon: LoadRun[];
    heavyEcho: LoadRun[];
    inprocRun: LoadRun;
    lightDaemon: LoadRun;
    lightEcho: LoadRun;
    idleRssKb: number;
    peakRssKb: number;
    batch: { batches: number; rows: number; requests: number };
    echoReplyBytes: number;
  },
): string {
  const d = summary(r.heavyDaemon);
  const e = summary(r.heavyEcho);
  const ip = summary([r.inprocRun]);
  const ld = summary([r.lightDaemon]);
  const le = summary([r.lightEcho]);
  const heavyRow = (label: string, s: ReturnType<typeof summary>) => [label, fmt(s.rps), s.rounds, fmt(s.p50, 2), fmt(s.p99, 2), fmt(s.sent), fmt(s.failed), fmt(s.lost), s.cpu];
  const lightRow = (label: string, s: ReturnType<typeof summary>) => [label, fmt(s.measured), fmt(s.p50, 3), fmt(s.p99, 3), fmt(s.rps), fmt(s.failed), fmt(s.lost), s.cpu];
  const ratio = d.rps / e.rps;
  const roundRatios = r.heavyDaemon.map((x, i) => pct(rate(x.result) / rate(r.heavyEcho[i].result))).join(', ');
  const added = ld.p50 - le.p50;
  const peakMb = r.peakRssKb / 1024;
  const meanBatch = r.batch.rows / r.batch.batches;
  const all = [...r.heavyDaemon, ...r.heavyEcho, r.inprocRun, r.lightDaemon, r.lightEcho];
  const replies = r.heavyDaemon.reduce((n, x) => n + x.result.replies, 0);
  const replyBytes = r.heavyDaemon.reduce((n, x) => n + x.result.replyBytes, 0) / Math.max(1, replies);
  const firstError = all.find((x) => x.result.firstError)?.result.firstError;
  const cpuHeader = 'CPU: responder / mosquitto / load-gen';
  return [
    `### Throughput, closed loop: ${o.clients} clients × ${o.window} outstanding, MQTT 5 QoS 0, ${o.measureMs / 1000} s after ${o.warmupMs / 1000} s warm-up, ${o.rounds} alternating rounds`,
    '',
    table(
      ['path', 'replies/s (median)', 'per round', 'p50 ms', 'p99 ms', 'sent', 'failed', 'lost', cpuHeader],
      [heavyRow('daemon (child process)', d), heavyRow('echo responder (ceiling)', e), heavyRow('daemon (in-process, for batch stats)', ip)],
    ),
    '',
    `Latency percentiles pool all rounds; sent/failed/lost are totals including warm-up. CPU is the share of one core ` +
      `each process used while measuring (${os.availableParallelism()} cores in all). Mean reply: ${fmt(replyBytes)} bytes from the daemon, ` +
      `${r.echoReplyBytes} bytes from the echo responder (one daemon reply, replayed). In-process run, measured window: ` +
      `${fmt(r.batch.requests)} requests in ${fmt(r.batch.batches)} engine calls, **${fmt(meanBatch, 2)} rows per engine call** ` +
      `(maxBatch 32, maxDelayMs 2).`,
    '',
    `### Light load: 1 client, 1 outstanding request, ${o.lightRequests} requests after 1 s warm-up`,
    '',
    table(['path', 'requests', 'p50 ms', 'p99 ms', 'replies/s', 'failed', 'lost', cpuHeader], [lightRow('daemon (child process)', ld), lightRow('echo responder (ceiling)', le)]),
    '',
    '### Serving targets (same run)',
    '',
    table(
      ['measure', 'value', 'target', 'result'],
      [
        ['e2e throughput / echo throughput (medians)', `${pct(ratio)} (${fmt(d.rps)} / ${fmt(e.rps)} replies/s; per round ${roundRatios})`, '≥ 60%', met(ratio >= 0.6)],
        ['latency added by the daemon: p50(daemon) − p50(echo), light load', `${fmt(added, 3)} ms (${fmt(ld.p50, 3)} − ${fmt(le.p50, 3)})`, '≤ 1 ms', met(added <= 1)],
        ['peak daemon RSS under load (idle after start)', `${fmt(peakMb, 1)} MB (${fmt(r.idleRssKb / 1024, 1)} MB)`, '≤ 200 MB', met(peakMb <= 200)],
        ['mean rows per engine call (in-process run)', fmt(meanBatch, 2), 'info', '–'],
      ],
    ),
    ...(firstError ? ['', `First error reply seen: \`${firstError}\``] : []),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string' },
      window: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      light: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  const d = defaultServingOptions;
  const opts: ServingOptions = {
    ...d,
    clients: Number(values.clients ?? d.clients),
    window: Number(values.window ?? d.window),
    measureMs: values.seconds ? Number(values.seconds) * 1000 : d.measureMs,
    rounds: Number(values.rounds ?? d.rounds),
    lightRequests: Number(values.light ?? d.lightRequests),
    cpuProfDir: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined,
  };
  runServing(opts).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
