/**
 * Serving while the device fine-tunes (issue 10): one daemon child (`node bin/edgeloop.js
 * serve`, over a real Mosquitto) is given 500 labelled faulty digits rows (served, then labelled
 * by predictionId over MQTT), then an open-loop generator (a child process: this file with --gen)
 * sends 1-row digits requests at a fixed rate, well below saturation, for the whole run. Windows
 * alternate: idle (no fine-tune), then a fine-tune (POST /models/digits/retrain {wait: true} on
 * the admin API), ..., and a last idle window. Latency is client-side, publish to reply, by the
 * window a request was sent in. Dry runs train, verify and gate the candidate without installing
 * it, so every fine-tune starts from the same parent; the last one promotes (install + activation
 * on trial under load).
 *
 *   npx tsx scripts/bench/learning-serving.ts [--rate 400] [--rounds 3] [--idle 10] [--rows 500]
 *
 * Investigation only: BENCH_CPU_PROF=DIR (a CPU profile of the daemon), BENCH_NODE_ARGS='--trace-gc'
 * with BENCH_DAEMON_OUTPUT=FILE (the daemon's output), BENCH_DUMP=FILE (every request's send time and latency, as JSON).
 */
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import type { RetrainOutcome } from '../../src/learning/index.js';
import { digitsScenario, faulty, slice } from '../../test/helpers/learning-scenario.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, startDaemonChild, stopChild, type DaemonChild } from './daemon-child.js';
import { fmt, isMain, met, percentiles, runAsChild, standalone, table, type BenchResult } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DEVICE = 'bench-learn';
const MODEL = 'digits';

interface GenOptions {
  url: string;
  rate: number;
  clients: number;
  /** A request with no reply after this long counts as lost. */
  lostAfterMs: number;
}
/** Per request: send time (ms since epoch, to match the parent's windows), latency (ms; NaN: lost), failed. */
interface GenResult {
  sentAt: number[];
  latency: number[];
  failed: boolean[];
  firstError?: string;
  late: number;
}

/** The generator (child process): open loop, `rate` requests/s spread over the clients, until told to stop. */
async function generate(o: GenOptions): Promise<GenResult> {
  const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;
  const payloads = rows.map((r) => Buffer.from(JSON.stringify({ inputs: r })));
  const res: GenResult = { sentAt: [], latency: [], failed: [], late: 0 };
  const t0: number[] = [];
  const clients: MqttClient[] = [];
  for (let i = 0; i < o.clients; i++) {
    const c = await mqtt.connectAsync(o.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: `bench-learn-${process.pid}-${i}` });
    (c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    await c.subscribeAsync(`bench/learn/${process.pid}/${i}`, { qos: 0 });
    c.on('message', (_t, p, packet) => {
      const now = performance.now();
      const cd = packet.properties?.correlationData;
      const k = cd && cd.length === 4 ? cd.readUInt32BE(0) : -1;
      if (k < 0 || k >= t0.length || !Number.isNaN(res.latency[k])) return void res.late++;
      res.latency[k] = now - t0[k];
      if (p.includes('"error"')) {
        res.failed[k] = true;
        res.firstError ??= p.toString().slice(0, 300);
      }
    });
    clients.push(c);
  }
  let stop = false;
  process.on('message', (m) => m === 'stop' && (stop = true));
  process.send!('ready');
  const start = performance.now();
  let sent = 0;
  while (!stop) {
    // Open loop: as many requests as the schedule says by now, whatever the replies do.
    const due = Math.floor(((performance.now() - start) / 1000) * o.rate);
    for (; sent < due; sent++) {
      const k = sent;
      const cd = Buffer.allocUnsafe(4);
      cd.writeUInt32BE(k);
      const c = clients[k % clients.length];
      t0[k] = performance.now();
      res.sentAt[k] = Date.now();
      res.latency[k] = NaN;
      res.failed[k] = false;
      c.publish(`edgeloop/${DEVICE}/infer/${MODEL}`, payloads[k % payloads.length], { qos: 0, properties: { responseTopic: `bench/learn/${process.pid}/${k % clients.length}`, correlationData: cd } });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, o.lostAfterMs));
  await Promise.all(clients.map((c) => c.endAsync(true)));
  return res;
}

/** Serve `rows` over MQTT 5 (one request per 10 rows), then label every prediction by id (50 a message); returns labels accepted. */
async function feedRows(url: string, x: Float32Array, y: Float32Array, n: number): Promise<number> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  const reply = 'bench/learn/feed';
  await c.subscribeAsync(reply, { qos: 1 });
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  c.on('message', (_t, p, packet) => {
    const k = Number(packet.properties?.correlationData?.toString());
    waiting.get(k)?.(JSON.parse(p.toString()) as Record<string, unknown>);
    waiting.delete(k);
  });
  let seq = 0;
  const ask = (topic: string, body: unknown) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const k = ++seq;
      waiting.set(k, resolve);
      c.publish(topic, JSON.stringify(body), { qos: 1, properties: { responseTopic: reply, correlationData: Buffer.from(String(k)) } });
    });
  try {
    const ids: string[] = [];
    for (let i = 0; i < n; i += 10) {
      const m = Math.min(10, n - i);
      const inputs = Array.from({ length: m }, (_, j) => Array.from(x.subarray((i + j) * 64, (i + j + 1) * 64)));
      const r = (await ask(`edgeloop/${DEVICE}/infer/${MODEL}`, { inputs })) as { predictions?: { predictionId: string }[]; error?: unknown };
      if (!r.predictions) throw new Error(`inference failed while feeding rows: ${JSON.stringify(r.error)}`);
      ids.push(...r.predictions.map((p) => p.predictionId));
    }
    let accepted = 0;
    for (let i = 0; i < ids.length; i += 50) {
      const items = ids.slice(i, i + 50).map((predictionId, j) => ({ predictionId, label: String(y[i + j]) }));
      const ack = (await ask(`edgeloop/${DEVICE}/feedback/${MODEL}`, { items })) as { accepted?: number; error?: { message: string } };
      if (ack.error) throw new Error(`feedback refused: ${ack.error.message}`);
      accepted += ack.accepted ?? 0;
    }
    return accepted;
  } finally {
    await c.endAsync(true);
  }
}

/** Child processes of a process (Linux /proc): the daemon's trainer while it runs. */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Sample every 50 ms whether the daemon has a child (the trainer): the spans it had one, and the CPU seconds it used (last sample). */
function watchTrainer(pid: number): { stop(): { spans: { from: number; to: number }[]; cpu: number } } {
  const spans: { from: number; to: number }[] = [];
  let open: number | undefined;
  let cpu = 0;
  const seen = new Map<number, number>();
  const timer = setInterval(() => {
    const now = Date.now();
    const kids = children(pid);
    for (const k of kids) {
      const c = cpuSeconds(k);
      if (Number.isFinite(c)) seen.set(k, c);
    }
    if (kids.length > 0 && open === undefined) open = now;
    if (kids.length === 0 && open !== undefined) (spans.push({ from: open, to: now }), (open = undefined));
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      if (open !== undefined) spans.push({ from: open, to: Date.now() });
      for (const c of seen.values()) cpu += c;
      return { spans, cpu };
    },
  };
}

interface Window {
  kind: 'idle' | 'fine-tune' | 'trainer running' | 'daemon side of the run';
  from: number;
  to: number;
  outcome?: RetrainOutcome;
  /** Daemon CPU seconds over the window. */
  daemonCpu: number;
  /** Trainer CPU seconds (fine-tune windows). */
  trainerCpu?: number;
  load: number;
}

interface WindowStats {
  requests: number;
  replies: number;
  failed: number;
  lost: number;
  p50: number;
  p99: number;
  max: number;
}

function stats(g: GenResult, from: number, to: number): WindowStats {
  const lat: number[] = [];
  let requests = 0;
  let failed = 0;
  let lost = 0;
  for (let k = 0; k < g.sentAt.length; k++) {
    if (g.sentAt[k] < from || g.sentAt[k] >= to) continue;
    requests++;
    if (Number.isNaN(g.latency[k])) lost++;
    else {
      lat.push(g.latency[k]);
      if (g.failed[k]) failed++;
    }
  }
  const [p50, p99, max] = percentiles(lat, [50, 99, 100]);
  return { requests, replies: lat.length, failed, lost, p50, p99, max };
}

export interface LearningServingOptions {
  /** Requests per second (open loop). */
  rate: number;
  /** Fine-tune runs (idle windows before each, and one after). */
  rounds: number;
  /** Idle window (seconds). */
  idleSeconds: number;
  /** Labelled faulty rows for training (a fifth more are fed: the holdout takes its share). */
  rows: number;
}

export async function runLearningServing(o: LearningServingOptions = { rate: 400, rounds: 3, idleSeconds: 10, rows: 500 }): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const mosquitto = await startMosquitto(undefined, 'allow_anonymous true\nset_tcp_nodelay true');
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-learn-'));
  // Manual runs only (no automatic run mid-window). Drift off: the generator cycles 20 clean
  // rows, an alert opening or clearing would move "the shift" and change the rows each run trains on.
  const d: DaemonChild = await startDaemonChild({ url: mosquitto.url, deviceId: DEVICE, home, config: { learning: { auto: false }, drift: { enabled: false }, feedback: { flushIntervalMs: 200 } }, nodeArgs: [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [])] });
  let gen: ReturnType<typeof fork> | undefined;
  try {
    const s = await digitsScenario(path.join(root, 'models', MODEL));
    // holdoutShare 0.2: feeding rows / 0.8 leaves `rows` to train on.
    const fed = Math.ceil(o.rows / 0.8);
    const field = faulty(slice(s.pool, 0, fed), 'shift-right');
    // As in the field (and scripts/demo-learn.ts): clean labelled rows before the fault (what a
    // fine-tune replays against forgetting), then faulty ones, 50 at a time, until the accuracy
    // alert opens ("the shift": a fine-tune trains on rows since it), then the rows it trains on.
    const clean = slice(s.pool, s.pool.rows - 500, 500);
    await feedRows(mosquitto.url, clean.x, clean.y, clean.rows);
    await new Promise((r) => setTimeout(r, 300));
    const alertOpen = async () => ((await d.admin<{ models: { model: string; liveAccuracy: { alert: unknown } | null }[] }>('GET', '/feedback')).models.find((m) => m.model === MODEL)?.liveAccuracy?.alert ?? null) !== null;
    for (let i = 0; i < 8 && !(await alertOpen()); i++) {
      const early = faulty(slice(s.pool, fed + i * 50, 50), 'shift-right');
      await feedRows(mosquitto.url, early.x, early.y, early.rows);
      await new Promise((r) => setTimeout(r, 300));
    }
    if (!(await alertOpen())) throw new Error('no accuracy alert after 400 faulty labelled rows');
    const accepted = await feedRows(mosquitto.url, field.x, field.y, fed);
    await new Promise((r) => setTimeout(r, 600)); // a flush: the rows are in the store

    const child = fork(fileURLToPath(import.meta.url), ['--gen', JSON.stringify({ url: mosquitto.url, rate: o.rate, clients: 4, lostAfterMs: 5000 } satisfies GenOptions)], { cwd: root, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    gen = child;
    const result = new Promise<GenResult>((resolve, reject) => {
      child.on('message', (m) => m !== 'ready' && resolve(m as GenResult));
      child.once('exit', (code) => reject(new Error(`generator exited (${code}) without a result`)));
    });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    await new Promise((r) => setTimeout(r, 3000)); // warm-up, not measured

    const windows: Window[] = [];
    const phases: { kind: Window['kind']; from: number; to: number }[] = [];
    const idle = async () => {
      const c0 = cpuSeconds(d.pid);
      const from = Date.now();
      await new Promise((r) => setTimeout(r, o.idleSeconds * 1000));
      windows.push({ kind: 'idle', from, to: Date.now(), daemonCpu: cpuSeconds(d.pid) - c0, load: os.loadavg()[0] });
    };
    for (let i = 0; i < o.rounds; i++) {
      await idle();
      const c0 = cpuSeconds(d.pid);
      const from = Date.now();
      const watch = watchTrainer(d.pid);
      const outcome = await d.admin<RetrainOutcome>('POST', `/models/${MODEL}/retrain`, { wait: true, dryRun: i < o.rounds - 1 }, 600_000);
      const to = Date.now();
      windows.push({ kind: 'fine-tune', from, to, outcome, daemonCpu: cpuSeconds(d.pid) - c0, load: os.loadavg()[0] });
      // The same window split: while the trainer process ran, and the rest (collecting rows, the gate, install, activation).
      const { spans, cpu: trainerCpu } = watch.stop();
      windows[windows.length - 1].trainerCpu = trainerCpu;
      phases.push(...spans.map((sp) => ({ kind: 'trainer running' as const, ...sp })));
      let t = from;
      for (const sp of [...spans, { from: to, to }]) {
        if (sp.from > t) phases.push({ kind: 'daemon side of the run', from: t, to: sp.from });
        t = sp.to;
      }
    }
    await idle();
    child.send('stop');
    const g = await result;

    if (process.env.BENCH_DUMP) (await import('node:fs')).writeFileSync(process.env.BENCH_DUMP, JSON.stringify({ g, windows, phases }));
    const per = windows.map((w) => ({ w, s: stats(g, w.from, w.to) }));
    const pool = (kind: Window['kind']) => {
      const ws = [...windows, ...phases].filter((w) => w.kind === kind);
      const lat: number[] = [];
      for (let k = 0; k < g.sentAt.length; k++) if (!Number.isNaN(g.latency[k]) && ws.some((w) => g.sentAt[k] >= w.from && g.sentAt[k] < w.to)) lat.push(g.latency[k]);
      return percentiles(lat, [50, 99]);
    };
    const [idleP50, idleP99] = pool('idle');
    const [ftP50, ftP99] = pool('fine-tune');
    const [trP50, trP99] = pool('trainer running');
    const [dsP50, dsP99] = pool('daemon side of the run');
    const phaseSeconds = (kind: Window['kind']) => phases.filter((p) => p.kind === kind).reduce((a, p) => a + (p.to - p.from) / 1000, 0);
    const bad = per.reduce((a, { s }) => a + s.failed + s.lost, 0);
    const fts = windows.filter((w) => w.outcome);
    const wall = fts.map((w) => (w.to - w.from) / 1000);
    const ms = (v: number) => `${fmt(v, 1)} ms`;
    const rows = per.map(({ w, s }) => [
      w.kind,
      `${fmt((w.to - w.from) / 1000, 1)} s`,
      w.outcome ? `${w.outcome.outcome}${w.outcome.dryRun ? ' (dry run)' : ''}${w.outcome.version ? ` ${w.outcome.version}` : ''}` : '',
      fmt(s.requests),
      ms(s.p50),
      ms(s.p99),
      ms(s.max),
      String(s.failed),
      String(s.lost),
      `${fmt((w.daemonCpu / ((w.to - w.from) / 1000)) * 100)}%`,
      w.trainerCpu === undefined ? '' : `${fmt(w.trainerCpu, 1)} s`,
      w.load.toFixed(2),
    ]);
    const last = fts[fts.length - 1]?.outcome;
    const gate = last?.gate?.holdout;
    const md = [
      '### Serving while fine-tuning',
      '',
      `One daemon (\`node bin/edgeloop.js serve\`) over Mosquitto (set_tcp_nodelay true); ${accepted} labelled rows of digits with the shift-right fault fed over MQTT feedback (${last?.rows.new ?? '?'} train, ${last?.rows.holdout ?? '?'} holdout, ${last?.rows.replay ?? '?'} replay); an open-loop generator sends ${o.rate} one-row requests/s (MQTT 5, QoS 0, 4 clients) for the whole run. Latency: client-side, publish to reply, by the window the request was sent in. Fine-tunes: POST /models/digits/retrain {wait: true} (dry runs except the last, which promotes: install + activation on trial under load). Trainer: a child process at nice 10 under SCHED_IDLE (the device default, learning.scheduling idle).`,
      '',
      table(['window', 'length', 'fine-tune outcome', 'requests', 'p50', 'p99', 'max', 'failed', 'lost', 'daemon CPU (of one core)', 'trainer CPU time', 'load average (1 min)'], rows),
      '',
      table(
        ['all windows of a kind', 'p50', 'p99'],
        [
          ['idle', ms(idleP50), ms(idleP99)],
          ['during a fine-tune', ms(ftP50), ms(ftP99)],
          [`… while the trainer process ran (${fmt(phaseSeconds('trainer running'), 1)} s)`, ms(trP50), ms(trP99)],
          [`… the daemon's side: rows, gate, install, activation (${fmt(phaseSeconds('daemon side of the run'), 1)} s)`, ms(dsP50), ms(dsP99)],
        ],
      ),
      last ? `\nLast fine-tune: ${last.outcome} ${last.version ?? ''}, strategy ${last.strategy}, ${fmt(last.durationMs / 1000, 1)} s; gate: holdout ${gate ? `${gate.rows} rows, ${fmt(gate.parent * 100, 1)}% -> ${fmt(gate.candidate * 100, 1)}%` : 'n/a'}; ${last.reason}` : '',
    ].join('\n');
    const ratio = ftP99 / idleP99;
    return {
      md,
      targets: [
        ['serving p99 during a fine-tune / idle p99 (' + o.rate + ' req/s)', `${fmt(ratio, 2)}x (${ms(ftP99)} / ${ms(idleP99)})`, '≤ 1.5x', met(ratio <= 1.5)],
        ['failed or lost requests (whole run)', String(bad), '0', met(bad === 0)],
        [`fine-tune wall time, digits, ${last?.rows.new ?? o.rows} rows (under load)`, wall.map((w) => `${fmt(w, 1)} s`).join(', '), '< 60 s', met(wall.every((w) => w < 60) && fts.every((w) => w.outcome!.outcome !== 'failed'))],
      ],
    };
  } finally {
    if (gen && gen.exitCode === null) gen.kill('SIGKILL');
    const exit = await stopChild(d.child);
    if (exit !== 0) console.error(`daemon exited with ${exit}; last log lines:\n${d.log()}`);
    await mosquitto.stop();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { gen: { type: 'string' }, rate: { type: 'string' }, rounds: { type: 'string' }, idle: { type: 'string' }, rows: { type: 'string' } } });
  if (values.gen) {
    const gen = JSON.parse(values.gen) as GenOptions;
    runAsChild(() => generate(gen));
  } else {
    runLearningServing({ rate: Number(values.rate ?? 400), rounds: Number(values.rounds ?? 3), idleSeconds: Number(values.idle ?? 10), rows: Number(values.rows ?? 500) }).then(
      (r) => console.log(standalone(r)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
