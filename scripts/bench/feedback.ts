/**
 * Feedback benchmark: the cost of labelled feedback to serving, and the prediction ring's memory.
 * Daemon children (`node bin/edgeloop.js serve`, over a real Mosquitto) are loaded by closed-loop
 * MQTT 5 generators (child processes: this file with --gen) in two modes: inference only, and
 * inference with 10% of the replies followed by a feedback message naming their predictionId
 * (fire and forget: QoS 0, no reply address). Throughput is replies per second over the measured
 * window; the cost is the drop from the first mode to the second. The target is measured paired
 * in time (runPaired: two daemons loaded at the same time, one per mode, a fresh pair per round);
 * for the record, one daemon with the modes taking turns (ABBA) against Mosquitto with
 * `set_tcp_nodelay true` (the recommended broker setting), with Mosquitto's default (Nagle on),
 * and pinned.
 *
 * Why the broker setting matters: with Nagle on, Mosquitto holds every further small message to
 * a client until that client ACKs the previous one. A fire-and-forget feedback message is one the
 * daemon does not answer, so its kernel delays that ACK (up to 40 ms, nothing to piggyback it on)
 * and the requests behind it wait at the broker: half the closed-loop throughput, with a daemon
 * that idles. The daemon's own socket has Nagle off (src/transport/mqtt-transport.ts), which
 * fixes the same stall in the other direction (acknowledged feedback, events).
 *
 *   npx tsx scripts/bench/feedback.ts [--seconds 4] [--rounds 3] [--clients 8] [--window 4]
 *       [--paired 16] [--brokers nodelay,default,pinned ('' for none)] [--cpu-prof DIR]   (investigation only)
 */
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { PredictionRing } from '../../src/feedback/index.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, startDaemonChild, stopChild } from './daemon-child.js';
import { fmt, isMain, medianInterval, met, runAsChild, standalone, table, type BenchResult } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DEVICE = 'bench-fb';
const MODEL = 'digits';

interface GenOptions {
  url: string;
  deviceId: string;
  clients: number;
  window: number;
  warmupMs: number;
  measureMs: number;
  /** Send feedback after every n-th reply (0: none). */
  feedbackEvery: number;
}
interface GenResult {
  /** Daemon and broker CPU seconds per 1,000 replies over the generator's whole run (filled in by the parent). */
  daemonCpuPer1k?: number;
  brokerCpuPer1k?: number;
  replies: number;
  /** Replies over the whole run (warm-up included). */
  total: number;
  feedback: number;
  seconds: number;
  /** Share of one core the generator itself used while measuring. */
  cpu: number;
}

/** The generator (child process): closed loop, `window` requests outstanding per client. */
async function generate(o: GenOptions): Promise<GenResult> {
  const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][]; labels: number[] });
  const payloads = rows.rows.map((r) => Buffer.from(JSON.stringify({ inputs: r })));
  let phase: 'warmup' | 'measure' | 'done' = 'warmup';
  let replies = 0;
  let total = 0;
  let feedback = 0;
  let seen = 0;
  const clients: MqttClient[] = [];
  for (let i = 0; i < o.clients; i++) {
    const c = await mqtt.connectAsync(o.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: `bench-fb-${process.pid}-${i}` });
    // Nagle would hold the request written right after a feedback message until the broker's ACK.
    (c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    const replyTopic = `bench/fb/${process.pid}/${i}`;
    await c.subscribeAsync(replyTopic, { qos: 0 });
    let next = i;
    const send = () => {
      if (phase === 'done') return;
      c.publish(`edgeloop/${o.deviceId}/infer/${MODEL}`, payloads[next++ % payloads.length], { qos: 0, properties: { responseTopic: replyTopic, correlationData: Buffer.from(String(next % 20)) } });
    };
    c.on('message', (_t, p, packet) => {
      total++;
      if (phase === 'measure') replies++;
      if (o.feedbackEvery > 0 && ++seen % o.feedbackEvery === 0) {
        const id = (JSON.parse(p.toString()) as { predictionId?: string }).predictionId;
        const k = Number(packet.properties?.correlationData?.toString() ?? 0);
        if (id) {
          c.publish(`edgeloop/${o.deviceId}/feedback/${MODEL}`, JSON.stringify({ predictionId: id, label: rows.labels[(k + 19) % 20] }), { qos: 0 });
          if (phase === 'measure') feedback++;
        }
      }
      send();
    });
    clients.push(c);
    for (let w = 0; w < o.window; w++) send();
  }
  await new Promise((r) => setTimeout(r, o.warmupMs));
  phase = 'measure';
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, o.measureMs));
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  const result = { replies, total, feedback, seconds, cpu: (used.user + used.system) / 1e6 / seconds };
  phase = 'done';
  await new Promise((r) => setTimeout(r, 500));
  await Promise.all(clients.map((c) => c.endAsync(true)));
  return result;
}

function runGen(o: GenOptions, cpu?: number): Promise<GenResult> {
  const child = fork(fileURLToPath(import.meta.url), ['--gen', JSON.stringify(o)], { cwd: root, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (cpu !== undefined) pin(child.pid!, cpu); // during its 1 s warm-up
  return new Promise((resolve, reject) => {
    child.once('message', (m: GenResult) => resolve(m));
    child.once('exit', (code) => reject(new Error(`generator exited (${code}) without a result`)));
  });
}

/** Every thread of a process (and those it starts later) on one CPU: util-linux's taskset. */
function pin(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Bytes a full ring takes, measured: V8's ArrayBuffer accounting before and after filling one. */
function measureRing(rowSize: number, capacity: number): { computed: number; measured: number } {
  const before = process.memoryUsage().arrayBuffers;
  const ring = new PredictionRing(rowSize, capacity);
  const row = new Float32Array(rowSize);
  for (let i = 1; i <= capacity; i++) ring.complete(ring.write(row, 1, i, '1.0.0', i), i, [i % 10]);
  const measured = process.memoryUsage().arrayBuffers - before;
  return { computed: ring.bytes, measured };
}

export interface FeedbackBenchOptions {
  seconds: number;
  rounds: number;
  clients: number;
  window: number;
  /** Write a V8 CPU profile of the daemon here (investigation only). */
  cpuProfDir?: string;
  /** Broker configurations to measure one daemon in, in order: 'nodelay' (set_tcp_nodelay true), 'default', 'pinned'. */
  brokers?: BrokerKind[];
  /** Rounds of the paired measurement (the target; 0: none). */
  pairedRounds?: number;
}

/**
 * 'pinned': set_tcp_nodelay true, and the daemon alone on CPU 1 with the broker and the load
 * generator on CPU 0. On 2 shared cores the generator's own cost of sending the feedback (and
 * the broker's of carrying it) slows the closed loop as much as the daemon's work does; on a
 * device the clients are other machines. Pinned (with 4x the requests outstanding, so that the
 * daemon's core is what limits the loop), throughput is what the daemon's core serves.
 */
export type BrokerKind = 'nodelay' | 'default' | 'pinned';

interface BrokerRun {
  broker: BrokerKind;
  none: GenResult[];
  fb: GenResult[];
  base: number;
  withFb: number;
  cost: number;
  ring?: { rows: number; bytes: number };
  stored: number;
  load: number[];
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** One broker configuration: Mosquitto, the daemon child, ABBA rounds of the two modes. */
async function runBroker(broker: BrokerKind, o: FeedbackBenchOptions): Promise<BrokerRun> {
  const mosquitto = await startMosquitto(undefined, broker !== 'default' ? 'allow_anonymous true\nset_tcp_nodelay true' : undefined);
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-fb-'));
  // A rate limit well above the offered feedback: the bench measures the cost, not the limiter.
  // No automatic fine-tuning: the bench's labels are mostly wrong, so an accuracy alert opens and
  // a fine-tune would start, whose CPU is the learning bench's to measure, not the feedback's.
  const d = await startDaemonChild({ url: mosquitto.url, deviceId: DEVICE, home, config: { feedback: { ratePerSecond: 100_000, burst: 100_000 }, learning: { auto: false } }, nodeArgs: o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [] });
  const pinned = broker === 'pinned' && os.cpus().length >= 2;
  if (pinned) {
    pin(d.pid, 1);
    pin(mosquitto.process.pid!, 0);
  }
  try {
    // Pinned, the daemon must be what limits the closed loop: 4x the requests outstanding keep its core busy.
    const window = pinned ? o.window * 4 : o.window;
    const gen = (feedbackEvery: number): GenOptions => ({ url: mosquitto.url, deviceId: DEVICE, clients: o.clients, window, warmupMs: 1000, measureMs: o.seconds * 1000, feedbackEvery });
    const none: GenResult[] = [];
    const fb: GenResult[] = [];
    const load = [os.loadavg()[0]];
    for (let i = 0; i < o.rounds; i++) {
      for (const mode of i % 2 ? ['fb', 'none'] : ['none', 'fb']) {
        const c0 = cpuSeconds(d.pid);
        const b0 = cpuSeconds(mosquitto.process.pid!);
        const r = await runGen(gen(mode === 'none' ? 0 : 10), pinned ? 0 : undefined);
        const k = Math.max(1, r.total) / 1000;
        r.daemonCpuPer1k = (cpuSeconds(d.pid) - c0) / k;
        r.brokerCpuPer1k = (cpuSeconds(mosquitto.process.pid!) - b0) / k;
        (mode === 'none' ? none : fb).push(r);
      }
    }
    load.push(os.loadavg()[0]);
    const status = await d.admin<{ models: { model: string; ring: { rows: number; bytes: number }; stored: { rows: number } | null }[] }>('GET', '/feedback');
    const m = status.models.find((x) => x.model === MODEL);
    const base = median(none.map((x) => x.replies / x.seconds));
    const withFb = median(fb.map((x) => x.replies / x.seconds));
    return { broker, none, fb, base, withFb, cost: 1 - withFb / base, ring: m?.ring, stored: m?.stored?.rows ?? 0, load };
  } finally {
    const exit = await stopChild(d.child);
    if (exit !== 0) console.error(`daemon exited with ${exit}; last log lines:\n${d.log()}`);
    await mosquitto.stop();
  }
}

/** Options of the paired measurement (the target): rounds of two daemons loaded at the same time. */
export interface PairedOptions {
  rounds: number;
  seconds: number;
  clients: number;
  window: number;
}

interface PairedRun {
  none: GenResult[];
  fb: GenResult[];
  costs: number[];
  load: number[];
}

/**
 * The cost paired in time: each round a fresh pair of daemon children over one Mosquitto
 * (set_tcp_nodelay true), each loaded by its own closed-loop generator at the same time, one with
 * 10% of its replies followed by feedback, one without. Sequential runs of one daemon on 2 shared
 * cores differ by more than the 3% to resolve (rounds of the same mode: 6,000 to 19,500 replies/s);
 * whatever else the machine does in a round slows both alike. Each daemon gets about half the
 * CPU, so the one that needs more per reply (its generator too) serves fewer. A fresh pair every
 * round, started in alternating order: two processes of one program differ by a few percent.
 */
async function runPaired(o: PairedOptions): Promise<PairedRun> {
  const mosquitto = await startMosquitto(undefined, 'allow_anonymous true\nset_tcp_nodelay true');
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-fb-paired-'));
  const config = { feedback: { ratePerSecond: 100_000, burst: 100_000 }, learning: { auto: false } };
  const none: GenResult[] = [];
  const fb: GenResult[] = [];
  const costs: number[] = [];
  const load = [os.loadavg()[0]];
  try {
    for (let i = 0; i < o.rounds; i++) {
      // Investigation only: FEEDBACK_BENCH_CPU_PROF=DIR writes a V8 CPU profile of each daemon in DIR/<device id>.
      const prof = process.env.FEEDBACK_BENCH_CPU_PROF;
      const start = (id: string) => startDaemonChild({ url: mosquitto.url, deviceId: id, home: path.join(home, `${id}-${i}`), config, nodeArgs: prof ? ['--cpu-prof', '--cpu-prof-dir', path.join(prof, id)] : [] });
      const first = await start(i % 2 ? 'bench-fb-on' : 'bench-fb-off');
      const second = await start(i % 2 ? 'bench-fb-off' : 'bench-fb-on');
      const [on, off] = i % 2 ? [first, second] : [second, first];
      try {
        const gen = (deviceId: string, feedbackEvery: number): GenOptions => ({ url: mosquitto.url, deviceId, clients: o.clients, window: o.window, warmupMs: 1000, measureMs: o.seconds * 1000, feedbackEvery });
        const c0 = [cpuSeconds(on.pid), cpuSeconds(off.pid)];
        const [a, b] = await Promise.all([runGen(gen('bench-fb-on', 10)), runGen(gen('bench-fb-off', 0))]);
        a.daemonCpuPer1k = (cpuSeconds(on.pid) - c0[0]) / (Math.max(1, a.total) / 1000);
        b.daemonCpuPer1k = (cpuSeconds(off.pid) - c0[1]) / (Math.max(1, b.total) / 1000);
        fb.push(a);
        none.push(b);
        costs.push(1 - a.replies / a.seconds / (b.replies / b.seconds));
      } finally {
        await stopChild(on.child);
        await stopChild(off.child);
      }
    }
  } finally {
    await mosquitto.stop();
  }
  load.push(os.loadavg()[0]);
  return { none, fb, costs, load };
}

const BROKER_LABEL: Record<BrokerKind, string> = {
  nodelay: 'Mosquitto, set_tcp_nodelay true',
  default: "Mosquitto's default (Nagle on)",
  pinned: 'set_tcp_nodelay true; daemon alone on CPU 1, broker + generator on CPU 0',
};

export async function runFeedbackBench(o: FeedbackBenchOptions = { seconds: 4, rounds: 3, clients: 8, window: 4, pairedRounds: 16 }): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const paired = o.pairedRounds ? await runPaired({ rounds: o.pairedRounds, seconds: o.seconds, clients: o.clients, window: o.window }) : undefined;
  const runs: BrokerRun[] = [];
  for (const b of o.brokers ?? ['nodelay', 'default', 'pinned']) runs.push(await runBroker(b, o));
  const ring = measureRing(64, 20_000);
  const rate = (r: GenResult) => fmt(r.replies / r.seconds);
  const cpu = (rs: GenResult[], k: 'daemonCpuPer1k' | 'brokerCpuPer1k') => `${fmt(median(rs.map((r) => r[k]! * 1000)), 0)} ms`;
  // The generator's CPU per 1,000 replies over its measured window: what the load itself costs the shared cores.
  const genCpu = (rs: GenResult[]) => `${fmt(median(rs.map((r) => (r.cpu * r.seconds * 1e6) / Math.max(1, r.replies))), 0)} ms`;
  const rows = runs.flatMap((r) => [
    [BROKER_LABEL[r.broker], 'inference only', fmt(r.base), r.none.map(rate).join(', '), '0', cpu(r.none, 'daemonCpuPer1k'), cpu(r.none, 'brokerCpuPer1k'), genCpu(r.none), '', r.load.map((x) => x.toFixed(2)).join(' → ')],
    [BROKER_LABEL[r.broker], '10% of replies followed by feedback', fmt(r.withFb), r.fb.map(rate).join(', '), fmt(r.fb.reduce((a, x) => a + x.feedback / x.seconds, 0) / r.fb.length), cpu(r.fb, 'daemonCpuPer1k'), cpu(r.fb, 'brokerCpuPer1k'), genCpu(r.fb), `${fmt(r.cost * 100, 1)}%`, ''],
  ]);
  const last = runs.at(-1);
  const pairedMd: string[] = [];
  let pairedTarget: BenchResult['targets'][number] | undefined;
  if (paired) {
    const cost = median(paired.costs);
    const [lo, hi] = medianInterval(paired.costs);
    const per = paired.costs.map((c) => `${fmt(c * 100, 1)}%`).join(', ');
    const dcpu = (rs: GenResult[]) => median(rs.map((r) => r.daemonCpuPer1k! * 1000));
    pairedMd.push(
      `Paired in time (the target): ${o.pairedRounds} rounds, each a fresh pair of daemons over one Mosquitto (set_tcp_nodelay true), loaded at the same time by one generator each (${o.clients} clients × ${o.window} outstanding, ${o.seconds} s), one with 10% of its replies followed by feedback. Load average ${paired.load.map((x) => x.toFixed(2)).join(' → ')}.`,
      '',
      table(
        ['daemon', 'replies/s (median)', 'per round', 'feedback msgs/s', 'daemon CPU µs per reply (median)'],
        [
          ['inference only', fmt(median(paired.none.map((r) => r.replies / r.seconds))), paired.none.map(rate).join(', '), '0', fmt(dcpu(paired.none), 1)],
          ['10% of replies followed by feedback', fmt(median(paired.fb.map((r) => r.replies / r.seconds))), paired.fb.map(rate).join(', '), fmt(median(paired.fb.map((r) => r.feedback / r.seconds))), fmt(dcpu(paired.fb), 1)],
        ],
      ),
      '',
      `Cost per round: ${per}.`,
      '',
      'One daemon, the two modes taking turns (ABBA), for the record:',
      '',
    );
    pairedTarget = [
      'serving cost of 10% feedback: 1 − throughput(feedback) / throughput(none), paired rounds, median [90% interval of the median]',
      `${fmt(cost * 100, 1)}% [${fmt(lo * 100, 1)}%, ${fmt(hi * 100, 1)}%] (daemon CPU per reply ${fmt(dcpu(paired.none), 1)} → ${fmt(dcpu(paired.fb), 1)} µs)`,
      '≤ 3%',
      // As the metrics bench: met only when the rounds pin the median under the bound.
      hi <= 0.03 ? met(true) : lo > 0.03 ? met(false) : `**inconclusive** (median ${cost <= 0.03 ? 'under' : 'over'} the bound, its interval across it)`,
    ];
  }
  const md = [
    '### Feedback: serving cost and prediction ring',
    '',
    ...pairedMd,
    `One daemon over Mosquitto, ${o.clients} MQTT 5 clients × ${o.window} outstanding (× ${o.window * 4} with the daemon pinned to its own core), ${o.seconds} s windows, ${o.rounds} rounds of each mode (ABBA) per broker setting; median replies/s. Feedback is fire and forget (QoS 0, no reply address). CPU: daemon, broker and load generator CPU time per 1,000 replies (median of the runs).`,
    '',
    table(['broker', 'mode', 'replies/s (median)', 'runs', 'feedback msgs/s', 'daemon CPU / 1k replies', 'broker CPU / 1k replies', 'generator CPU / 1k replies', 'cost', 'load average (1 min)'], rows),
    '',
    table(
      ['prediction ring', 'value'],
      [
        ['default size (feedback.ringSize)', '20,000 rows of 64 float32'],
        ['computed bytes (chunks of 1,024 rows)', `${fmt(ring.computed / 2 ** 20, 2)} MiB`],
        ['measured (ArrayBuffer growth when filled)', `${fmt(ring.measured / 2 ** 20, 2)} MiB`],
        ...(last
          ? [
              ['daemon after the run (GET /feedback)', `${fmt(last.ring?.rows ?? 0)} rows, ${fmt((last.ring?.bytes ?? 0) / 2 ** 20, 2)} MiB`],
              ['labelled rows stored during the run', fmt(last.stored)],
            ]
          : []),
      ],
    ),
  ].join('\n');
  const daemonCpu = (r: BrokerRun) => {
    const [a, b] = [median(r.none.map((x) => x.daemonCpuPer1k!)), median(r.fb.map((x) => x.daemonCpuPer1k!))];
    return `daemon CPU per reply ${fmt(a * 1000, 1)} → ${fmt(b * 1000, 1)} µs (${b >= a ? '+' : ''}${fmt(((b - a) / a) * 100, 1)}%)`;
  };
  const targets: BenchResult['targets'] = pairedTarget ? [pairedTarget] : [];
  for (const r of runs) targets.push([`serving cost of 10% feedback, one daemon, ABBA (${BROKER_LABEL[r.broker]})`, `${fmt(r.cost * 100, 1)}% (${daemonCpu(r)})`, 'recorded', 'see the feedback table']);
  targets.push(['prediction ring at 20,000 rows (digits)', `${fmt(ring.measured / 2 ** 20, 1)} MiB`, 'measured', 'met']);
  return { md, targets };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { gen: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' }, clients: { type: 'string' }, window: { type: 'string' }, 'cpu-prof': { type: 'string' }, brokers: { type: 'string' }, paired: { type: 'string' } } });
  if (values.gen) {
    const gen = JSON.parse(values.gen) as GenOptions;
    runAsChild(() => generate(gen));
  } else {
    runFeedbackBench({ seconds: Number(values.seconds ?? 4), rounds: Number(values.rounds ?? 3), clients: Number(values.clients ?? 8), window: Number(values.window ?? 4), cpuProfDir: values['cpu-prof'], brokers: values.brokers === '' ? [] : (values.brokers?.split(',') as BrokerKind[] | undefined), pairedRounds: Number(values.paired ?? 16) }).then(
      (r) => console.log(standalone(r)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
