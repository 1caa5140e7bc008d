/**
 * Serving benchmark over a real Mosquitto on loopback: the daemon as a child process
 * (`node bin/edgeloop.js serve`), driven by a closed-loop load generator in another child
 * process, against an echo responder that does no work (the MQTT ceiling). Two daemons run side
 * by side: drift monitoring on (the default) and off (`{"drift": {"enabled": false}}`), so the
 * cost of drift monitoring is measured in the same run. Batcher statistics (rows per engine
 * call), in-daemon latency and memory come from the child's admin API (`GET /status`).
 *
 *   npx tsx scripts/bench/serving.ts [--clients 8] [--window 4] [--seconds 4] [--rounds 5] [--light 2000]
 *       [--cpu-prof DIR] [--daemon-node-args=--max-semi-space-size=2]   (investigation only)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { interleavedLight, type LightResult } from './light-interleaved.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, startDaemonChild, stopChild, watchRss, type DaemonChild, type DriftStatus, type ModelStatus, type RuntimeStatus } from './daemon-child.js';
import type { LoadMessage, LoadOptions, LoadResult } from './load-gen.js';
import { fmt, isMain, met, percentiles, standalone, table, type BenchResult, type TargetRow } from './report.js';

export { stopChild } from './daemon-child.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const samplesFile = path.join(root, 'test/fixtures/digits-sample.json');
const MODEL = 'digits';
// Each responder has its own device id, so an idle one never sees the others' traffic.
const DRIFT_ON_ID = 'bench';
const DRIFT_OFF_ID = 'bench-nodrift';
const ECHO_ID = 'bench-echo';

export interface ServingOptions {
  clients: number;
  window: number;
  warmupMs: number;
  measureMs: number;
  /** Drift-on, drift-off and echo runs alternate this many times: on a noisy machine one run can mislead. */
  rounds: number;
  lightRequests: number;
  /** Write a V8 CPU profile of the (drift-on) daemon child here (investigation only). */
  cpuProfDir?: string;
  /** Extra node flags for both daemon children, e.g. --max-semi-space-size=2 (investigation only). */
  daemonNodeArgs?: string[];
}

export const defaultServingOptions: ServingOptions = { clients: 8, window: 4, warmupMs: 1500, measureMs: 4000, rounds: 5, lightRequests: 2000 };

export interface LoadRun {
  result: LoadResult;
  /** Share of one core each watched process used while measuring; the load generator last. */
  cpu: number[];
}

/**
 * The benches' closed loop over the digits rows: 8 MQTT 5 clients x 4 outstanding, 1.5 s of
 * warm-up, 4 s measured; a request unanswered after 6 s (longer than the daemon's 5 s timeout:
 * a timeout shows as a failure, not a loss) is lost. Any field can be overridden.
 */
export function closedLoop(url: string, topic: string, o: Partial<LoadOptions> = {}): LoadOptions {
  return { url, topic, clients: 8, window: 4, warmupMs: 1500, measureMs: 4000, maxMeasured: 2_000_000, lostAfterMs: 6000, samplesFile, ...o };
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

/** Batcher statistics of one model over a measured window, from `GET /status` at its start and end. */
export interface WindowStats {
  requests: number;
  batches: number;
  /** `GET /status` at the end of the window (in-daemon latency over the last 2048 requests, memory). */
  end: RuntimeStatus;
  model: ModelStatus;
}

/**
 * A load run against a daemon child, reading its `GET /status` when measuring starts and ends.
 * The status gives cumulative requests and mean rows per engine call; with one row per request
 * (as here), engine calls = requests / meanBatchRows, so the window's figure is a difference.
 */
export async function daemonLoad(d: DaemonChild, opts: LoadOptions, watch: number[], model: string, onPhase?: (p: 'measure' | 'drain') => void): Promise<LoadRun & { window: WindowStats }> {
  let s0: Promise<RuntimeStatus> | undefined;
  let s1: Promise<RuntimeStatus> | undefined;
  const run = await load(opts, [d.pid, ...watch], (p) => {
    if (p === 'measure') s0 = d.status();
    else s1 = d.status();
    onPhase?.(p);
  });
  const [a, b] = await Promise.all([s0!, s1!]);
  const ma = a.models.find((m) => m.name === model)!;
  const mb = b.models.find((m) => m.name === model)!;
  const calls = (m: ModelStatus) => (m.meanBatchRows ? m.requests / m.meanBatchRows : 0);
  return { ...run, window: { requests: mb.requests - ma.requests, batches: calls(mb) - calls(ma), end: b, model: mb } };
}

export async function runServing(o: ServingOptions = defaultServingOptions): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const mosquitto = await startMosquitto();
  const broker = mosquitto.process.pid!;
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-'));
  const heavyFor = (id: string): LoadOptions => closedLoop(mosquitto.url, `edgeloop/${id}/infer/${MODEL}`, { clients: o.clients, window: o.window, warmupMs: o.warmupMs, measureMs: o.measureMs });
  const lightFor = (id: string): LoadOptions => ({ ...heavyFor(id), clients: 1, window: 1, warmupMs: 1000, measureMs: 30_000, maxMeasured: o.lightRequests });
  const children: ChildProcess[] = [];
  const watchers: ReturnType<typeof watchRss>[] = [];
  try {
    // The daemon as users run it (drift on: the default), and a twin with drift monitoring off.
    const extra = o.daemonNodeArgs ?? [];
    const on = await startDaemonChild({ url: mosquitto.url, deviceId: DRIFT_ON_ID, home: path.join(home, 'on'), nodeArgs: [...extra, ...(o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [])] });
    children.push(on.child);
    const off = await startDaemonChild({ url: mosquitto.url, deviceId: DRIFT_OFF_ID, home: path.join(home, 'off'), config: { drift: { enabled: false } }, nodeArgs: extra });
    children.push(off.child);
    await new Promise((r) => setTimeout(r, 300));
    const rssOn = watchRss(on.pid);
    const rssOff = watchRss(off.pid);
    watchers.push(rssOn, rssOff);
    const idle = await on.status();
    const idleRssKb = rssOn.peakKb();
    // A first reply, for the echo to replay.
    const first = await load({ ...lightFor(DRIFT_ON_ID), warmupMs: 200, maxMeasured: 100 }, [on.pid, broker]);

    // The echo ceiling: same broker, clients and payloads, replying with a real reply's text.
    const reply = first.result.sampleReply;
    if (!reply) throw new Error(`the daemon sent no successful reply: ${first.result.firstError ?? 'no reply at all'}`);
    const echo = await startEcho(mosquitto.url, ECHO_ID, reply);
    children.push(echo);

    // Closed-loop load: drift on, drift off and echo alternate (order reversed every other
    // round) so that all three see the same machine weather.
    const heavyOn: Awaited<ReturnType<typeof daemonLoad>>[] = [];
    const heavyOff: Awaited<ReturnType<typeof daemonLoad>>[] = [];
    const heavyEcho: LoadRun[] = [];
    const steps: (() => Promise<void>)[] = [
      async () => void heavyOn.push(await daemonLoad(on, heavyFor(DRIFT_ON_ID), [broker], MODEL)),
      async () => void heavyOff.push(await daemonLoad(off, heavyFor(DRIFT_OFF_ID), [broker], MODEL)),
      async () => void heavyEcho.push(await load(heavyFor(ECHO_ID), [echo.pid!, broker])),
    ];
    for (let i = 0; i < o.rounds; i++) for (const step of i % 2 ? [...steps].reverse() : steps) await step();

    // Light load on the warm daemon (a device serves for days; a fresh one runs its first few
    // thousand requests in V8's lower tiers, scripts/bench/light-ab.ts), daemon and echo
    // interleaved in blocks of 50 requests so that both see the same machine weather.
    const light = await interleavedLight({ url: mosquitto.url, topics: [`edgeloop/${DRIFT_ON_ID}/infer/${MODEL}`, `edgeloop/${ECHO_ID}/infer/${MODEL}`], perTarget: o.lightRequests });

    const driftOn = await on.admin<DriftStatus>('GET', '/drift');
    const driftOff = await off.admin<DriftStatus>('GET', '/drift');
    const driftLogLines = on.driftEvents();
    const peakRssKb = rssOn.peakKb();
    const peakRssOffKb = rssOff.peakKb();
    await stopChild(echo);
    for (const [name, d] of [['drift on', on], ['drift off', off]] as const) {
      const exit = await stopChild(d.child);
      if (exit !== 0) console.error(`daemon (${name}) exited with ${exit}; last log lines:\n${d.log()}`);
      else if (d.log().trim()) console.error(`daemon (${name}) warnings:\n${d.log().trim()}`);
    }
    return report(o, { heavyOn, heavyOff, heavyEcho, light, idleRssKb, idle, peakRssKb, peakRssOffKb, driftOn, driftOff, driftLogLines, echoReplyBytes: Buffer.byteLength(reply) });
  } finally {
    for (const w of watchers) w.stop(); // a live interval would keep this process from exiting
    for (const c of children) await stopChild(c, 5000);
    await mosquitto.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** p50(a) − p50(b) in each quarter of two runs taken side by side (a trend shows warm-up). */
function quarters(a: number[], b: number[]): number[] {
  const p50 = (xs: number[]) => percentiles(xs, [50])[0];
  return [0, 1, 2, 3].map((q) => {
    const part = (xs: number[]) => xs.slice(Math.floor((q * xs.length) / 4), Math.floor(((q + 1) * xs.length) / 4));
    return p50(part(a)) - p50(part(b));
  });
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const rate = (r: LoadResult) => r.measured / (r.measuredMs / 1000);
export const pct = (x: number, digits = 0) => `${fmt(x * 100, digits)}%`;
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20, 1)} MB`;

/** One table row for one or more runs of the same path: median rate, pooled latencies, summed counts. */
export function summary(runs: LoadRun[]) {
  const latencies = runs.flatMap((r) => r.result.latencies);
  const [p50, p99] = percentiles(latencies, [50, 99]);
  const sum = (f: (r: LoadResult) => number) => runs.reduce((n, r) => n + f(r.result), 0);
  // CPU is counted in 10 ms ticks: meaningless over a window shorter than a second.
  const cpu = runs[0].result.measuredMs < 1000 ? '–' : runs[0].cpu.map((_, i) => pct(runs.reduce((s, r) => s + r.cpu[i], 0) / runs.length)).join(' / ');
  // CPU time of the responder (first watched process) per reply received while measuring.
  const cpuUs = (runs.reduce((s, r) => s + r.cpu[0] * r.result.measuredMs, 0) / 1000 / sum((r) => r.measured)) * 1e6;
  return { rps: median(runs.map((r) => rate(r.result))), rounds: runs.map((r) => fmt(rate(r.result))).join(', '), p50, p99, sent: sum((r) => r.sent), failed: sum((r) => r.failed), lost: sum((r) => r.lost), cpu, cpuUs, measured: sum((r) => r.measured) };
}

function report(
  o: ServingOptions,
  r: {
    heavyOn: (LoadRun & { window: WindowStats })[];
    heavyOff: (LoadRun & { window: WindowStats })[];
    heavyEcho: LoadRun[];
    light: LightResult;
    idleRssKb: number;
    idle: RuntimeStatus;
    peakRssKb: number;
    peakRssOffKb: number;
    driftOn: DriftStatus;
    driftOff: DriftStatus;
    driftLogLines: number;
    echoReplyBytes: number;
  },
): BenchResult {
  const d = summary(r.heavyOn);
  const n = summary(r.heavyOff);
  const e = summary(r.heavyEcho);
  const lightSummary = (k: number) => {
    const xs = [...r.light.latencies[k]].sort((a, b) => a - b);
    const [p50, p99] = percentiles(xs, [50, 99]);
    return { measured: xs.length, p50, p99, failed: r.light.failed[k], lost: r.light.lost[k] };
  };
  const ld = lightSummary(0);
  const le = lightSummary(1);
  const rowsPerCall = (runs: { window: WindowStats }[]) => runs.reduce((s, x) => s + x.window.requests, 0) / runs.reduce((s, x) => s + x.window.batches, 0);
  const bOn = rowsPerCall(r.heavyOn);
  const bOff = rowsPerCall(r.heavyOff);
  const heavyRow = (label: string, s: ReturnType<typeof summary>, batch: string) => [label, fmt(s.rps), s.rounds, fmt(s.p50, 2), fmt(s.p99, 2), fmt(s.sent), fmt(s.failed), fmt(s.lost), batch, fmt(s.cpuUs, 1), s.cpu];
  const lightRow = (label: string, s: ReturnType<typeof lightSummary>) => [label, fmt(s.measured), fmt(s.p50, 3), fmt(s.p99, 3), fmt(s.failed), fmt(s.lost)];
  // Each round's runs are adjacent in time, so a per-round ratio shares the machine's weather;
  // the median of those paired ratios is the headline figure (the ratio of medians mixes rounds).
  const pairedRatios = r.heavyOn.map((x, i) => rate(x.result) / rate(r.heavyEcho[i].result));
  const ratio = median(pairedRatios);
  const roundRatios = pairedRatios.map((x) => pct(x)).join(', ');
  const added = ld.p50 - le.p50;
  const peakMb = r.peakRssKb / 1024;
  const paired = r.heavyOn.map((x, i) => 1 - rate(x.result) / rate(r.heavyOff[i].result));
  const driftCost = median(paired);
  const roundCosts = paired.map((x) => pct(x, 1)).join(', ');
  const cpuCost = d.cpuUs / n.cpuUs - 1;
  const all = [...r.heavyOn, ...r.heavyOff, ...r.heavyEcho];
  const replies = r.heavyOn.reduce((k, x) => k + x.result.replies, 0);
  const replyBytes = r.heavyOn.reduce((k, x) => k + x.result.replyBytes, 0) / Math.max(1, replies);
  const firstError = all.find((x) => x.result.firstError)?.result.firstError;
  const cpuHeader = 'CPU: responder / mosquitto / load-gen';
  const last = r.heavyOn[r.heavyOn.length - 1].window;
  const mem = last.end.memory;
  const memOff = r.heavyOff[r.heavyOff.length - 1].window.end.memory;
  const inDaemon = (runs: { window: WindowStats }[]) => runs.map((x) => `${fmt(x.window.model.p50Ms ?? NaN, 2)} / ${fmt(x.window.model.p99Ms ?? NaN, 2)}`).join('; ');
  const digitsOn = r.driftOn.models.find((m) => m.model === MODEL);
  const monitoredRows = r.driftOn.models.reduce((s, m) => s + m.openWindow.rows, 0);
  const driftVerified = r.driftOn.enabled && !!digitsOn && digitsOn.windowsClosed + digitsOn.openWindow.rows + digitsOn.pendingWindows > 0 && !r.driftOff.enabled && r.driftOff.models.length === 0;
  const md = [
    `### Throughput, closed loop: ${o.clients} clients × ${o.window} outstanding, MQTT 5 QoS 0, ${o.measureMs / 1000} s after ${o.warmupMs / 1000} s warm-up, ${o.rounds} alternating rounds`,
    '',
    table(
      ['path', 'replies/s (median)', 'per round', 'p50 ms', 'p99 ms', 'sent', 'failed', 'lost', 'rows per engine call', 'responder CPU µs per reply', cpuHeader],
      [heavyRow('daemon, drift on (default config)', d, fmt(bOn, 2)), heavyRow('daemon, drift off', n, fmt(bOff, 2)), heavyRow('echo responder (ceiling)', e, 'n/a')],
    ),
    '',
    `Each round runs drift on, drift off, echo (reversed every other round); ratios are taken within a round, then their median. ` +
      `Latency percentiles pool all rounds; sent/failed/lost are totals including warm-up. CPU is the share of one core ` +
      `each process used while measuring (${os.availableParallelism()} cores in all). Rows per engine call: from the daemon child's ` +
      `admin API (\`GET /status\`: requests and meanBatchRows of \`${MODEL}\` at the start and end of each measured window), pooled over rounds ` +
      `(per round, drift on: ${r.heavyOn.map((x) => fmt(x.window.requests / x.window.batches, 2)).join(', ')}; maxBatch 32, adaptive batch window). ` +
      `In-daemon latency (queue + engine + post-processing, last 2048 requests, \`GET /status\` p50Ms / p99Ms at the end of each window), ` +
      `drift on: ${inDaemon(r.heavyOn)} ms; drift off: ${inDaemon(r.heavyOff)} ms; engine-call p99 ${fmt(last.model.engineP99Ms ?? NaN, 3)} ms. ` +
      `Mean reply: ${fmt(replyBytes)} bytes from the daemon, ${r.echoReplyBytes} bytes from the echo responder (one daemon reply, replayed).`,
    '',
    `Drift monitoring, checked after the rounds with \`GET /drift\`: drift-on daemon \`enabled: ${r.driftOn.enabled}\`, ${r.driftOn.models.length} models monitored, ` +
      `\`${MODEL}\`: ${fmt(digitsOn?.windowsClosed ?? 0)} windows closed, ${fmt(digitsOn?.openWindow.rows ?? 0)} rows in the open window ` +
      `(${fmt(monitoredRows)} open-window rows over all models); drift-off daemon \`enabled: ${r.driftOff.enabled}\`, ${r.driftOff.models.length} models monitored. ` +
      `${driftVerified ? 'Drift was on in the "on" runs and off in the "off" runs.' : '**Could not confirm drift on/off as configured.**'} ` +
      `The drift-on daemon logged ${r.driftLogLines} drift events: expected, since the load cycles through 20 sample rows, a far narrower distribution than the reference profile's.`,
    '',
    `Daemon memory (\`GET /status\`, drift-on daemon): idle after start RSS ${mb(r.idle.rssBytes)} (heap used ${mb(r.idle.memory.heapUsed)} of ${mb(r.idle.memory.heapTotal)}, ` +
      `external ${mb(r.idle.memory.external)}, array buffers ${mb(r.idle.memory.arrayBuffers)}); at the end of the last load run RSS ${mb(mem.rss)} ` +
      `(heap used ${mb(mem.heapUsed)} of ${mb(mem.heapTotal)}, external ${mb(mem.external)}, array buffers ${mb(mem.arrayBuffers)}); ` +
      `drift-off daemon at the end of its last load run: RSS ${mb(memOff.rss)} (heap used ${mb(memOff.heapUsed)} of ${mb(memOff.heapTotal)}, external ${mb(memOff.external)}, array buffers ${mb(memOff.arrayBuffers)}). ` +
      `Peak VmRSS (\`/proc\`, every 100 ms): ${fmt(peakMb, 1)} MB drift on, ${fmt(r.peakRssOffKb / 1024, 1)} MB drift off.`,
    '',
    `### Light load: 1 client, 1 outstanding request, ${o.lightRequests} requests to each after the closed-loop rounds (warm daemon), daemon and echo interleaved in blocks of 50, after 200 of warm-up each`,
    '',
    table(['path', 'requests', 'p50 ms', 'p99 ms', 'failed', 'lost'], [lightRow('daemon (drift on, default config)', ld), lightRow('echo responder (ceiling)', le)]),
    '',
    `p50 added by quarter of the light run (daemon − echo, ms): ${quarters(r.light.latencies[0], r.light.latencies[1]).map((q) => fmt(q, 3)).join(', ')}.`,
    ...(firstError ? ['', `First error reply seen: \`${firstError}\``] : []),
  ].join('\n');
  // CPU per reply of one run: the responder's share of a core over the window / replies measured.
  const cpuPerReply = (x: LoadRun) => (x.cpu[0] * x.result.measuredMs * 1000) / Math.max(1, x.result.measured);
  const cpuRatios = r.heavyOn.map((x, i) => cpuPerReply(x) / cpuPerReply(r.heavyEcho[i]));
  const cpuRatio = median(cpuRatios);
  const idleMb = r.idleRssKb / 1024;
  // Issue 14's bounds (serving at the broker's cost); the earlier ones were 60%, 1 ms and 200 MB.
  const targets: TargetRow[] = [
    [
      'serving: e2e throughput / echo throughput (median of per-round ratios, default config)',
      `${pct(ratio)} (per round ${roundRatios}; medians ${fmt(d.rps)} / ${fmt(e.rps)} replies/s = ${pct(d.rps / e.rps)})`,
      '≥ 85%',
      met(ratio >= 0.85),
    ],
    [
      'serving: daemon CPU per reply / echo responder CPU per reply (median of per-round ratios, drift on)',
      `${fmt(cpuRatio, 2)}x (per round ${cpuRatios.map((x) => `${fmt(x, 2)}x`).join(', ')}; pooled ${fmt(d.cpuUs, 1)} / ${fmt(e.cpuUs, 1)} µs)`,
      '≤ 1.5x',
      met(cpuRatio <= 1.5),
    ],
    ['serving: latency added by the daemon, p50(daemon) − p50(echo), light load', `${fmt(added, 3)} ms (${fmt(ld.p50, 3)} − ${fmt(le.p50, 3)})`, '≤ 0.15 ms', met(added <= 0.15)],
    ['serving: peak daemon RSS under load (demo models)', `${fmt(peakMb, 1)} MB`, '≤ 120 MB', met(peakMb <= 120)],
    ['serving: idle daemon RSS after start (demo models)', `${fmt(idleMb, 1)} MB`, '≤ 90 MB', met(idleMb <= 90)],
    [
      'drift monitoring cost: 1 − throughput(on) / throughput(off), median of per-round values',
      `${pct(driftCost, 1)} (per round ${roundCosts}; medians ${fmt(d.rps)} vs ${fmt(n.rps)} replies/s = ${pct(1 - d.rps / n.rps, 1)}); daemon CPU per reply ${fmt(d.cpuUs, 1)} vs ${fmt(n.cpuUs, 1)} µs (${cpuCost >= 0 ? '+' : ''}${pct(cpuCost, 1)})${driftVerified ? '' : '; drift on/off not confirmed'}`,
      '≤ 5%',
      met(driftCost <= 0.05 && driftVerified),
    ],
  ];
  return { md, targets };
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
      'daemon-node-args': { type: 'string' },
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
    daemonNodeArgs: values['daemon-node-args']?.split(' ').filter(Boolean),
  };
  runServing(opts).then(
    (r) => console.log(standalone(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
