/**
 * Feedback benchmark: the cost of labelled feedback to serving, and the prediction ring's memory.
 * One daemon child (`node bin/edgeloop.js serve`, over a real Mosquitto) is loaded by a
 * closed-loop MQTT 5 generator (a child process: this file with --gen) in two modes that
 * alternate (ABBA) in the same run: inference only, and inference with 10% of the replies
 * followed by a feedback message naming their predictionId (fire and forget: QoS 0, no reply
 * address). Throughput is replies per second over the measured window; the cost is the drop
 * from the first mode to the second. Both against Mosquitto with `set_tcp_nodelay true` (the
 * recommended broker setting, the target) and with Mosquitto's default (Nagle on, for the record).
 *
 * Why the broker setting matters: with Nagle on, Mosquitto holds every further small message to
 * a client until that client ACKs the previous one. A fire-and-forget feedback message is one the
 * daemon does not answer, so its kernel delays that ACK (up to 40 ms, nothing to piggyback it on)
 * and the requests behind it wait at the broker: half the closed-loop throughput, with a daemon
 * that idles. The daemon's own socket has Nagle off (src/transport/mqtt-transport.ts), which
 * fixes the same stall in the other direction (acknowledged feedback, events).
 *
 *   npx tsx scripts/bench/feedback.ts [--seconds 4] [--rounds 3] [--clients 8] [--window 4]
 *       [--brokers pinned,nodelay,default] [--cpu-prof DIR]   (investigation only)
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
import { fmt, isMain, met, runAsChild, standalone, table, type BenchResult } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DEVICE = 'bench-fb';
const MODEL = 'digits';

interface GenOptions {
  url: string;
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
      c.publish(`edgeloop/${DEVICE}/infer/${MODEL}`, payloads[next++ % payloads.length], { qos: 0, properties: { responseTopic: replyTopic, correlationData: Buffer.from(String(next % 20)) } });
    };
    c.on('message', (_t, p, packet) => {
      total++;
      if (phase === 'measure') replies++;
      if (o.feedbackEvery > 0 && ++seen % o.feedbackEvery === 0) {
        const id = (JSON.parse(p.toString()) as { predictionId?: string }).predictionId;
        const k = Number(packet.properties?.correlationData?.toString() ?? 0);
        if (id) {
          c.publish(`edgeloop/${DEVICE}/feedback/${MODEL}`, JSON.stringify({ predictionId: id, label: rows.labels[(k + 19) % 20] }), { qos: 0 });
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
  /** Broker configurations to measure, in order: 'nodelay' (set_tcp_nodelay true, the target), 'default'. */
  brokers?: BrokerKind[];
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
    const gen = (feedbackEvery: number): GenOptions => ({ url: mosquitto.url, clients: o.clients, window, warmupMs: 1000, measureMs: o.seconds * 1000, feedbackEvery });
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

const BROKER_LABEL: Record<BrokerKind, string> = {
  nodelay: 'Mosquitto, set_tcp_nodelay true',
  default: "Mosquitto's default (Nagle on)",
  pinned: 'set_tcp_nodelay true; daemon alone on CPU 1, broker + generator on CPU 0',
};

export async function runFeedbackBench(o: FeedbackBenchOptions = { seconds: 4, rounds: 3, clients: 8, window: 4 }): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
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
  const last = runs[runs.length - 1];
  const md = [
    '### Feedback: serving cost and prediction ring',
    '',
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
        ['daemon after the run (GET /feedback)', `${fmt(last.ring?.rows ?? 0)} rows, ${fmt((last.ring?.bytes ?? 0) / 2 ** 20, 2)} MiB`],
        ['labelled rows stored during the run', fmt(last.stored)],
      ],
    ),
  ].join('\n');
  const daemonCpu = (r: BrokerRun) => {
    const [a, b] = [median(r.none.map((x) => x.daemonCpuPer1k!)), median(r.fb.map((x) => x.daemonCpuPer1k!))];
    return `daemon CPU per reply ${fmt(a * 1000, 1)} → ${fmt(b * 1000, 1)} µs (${b >= a ? '+' : ''}${fmt(((b - a) / a) * 100, 1)}%)`;
  };
  const targets: BenchResult['targets'] = runs.map((r) =>
    r.broker === 'nodelay'
      ? ['serving cost of 10% feedback (Mosquitto set_tcp_nodelay true)', `${fmt(r.cost * 100, 1)}% (${daemonCpu(r)})`, '≤ 3%', met(r.cost <= 0.03)]
      : [`serving cost of 10% feedback (${BROKER_LABEL[r.broker]})`, `${fmt(r.cost * 100, 1)}% (${daemonCpu(r)})`, 'recorded', 'see the feedback table'],
  );
  targets.push(['prediction ring at 20,000 rows (digits)', `${fmt(ring.measured / 2 ** 20, 1)} MiB`, 'measured', 'met']);
  return { md, targets };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { gen: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' }, clients: { type: 'string' }, window: { type: 'string' }, 'cpu-prof': { type: 'string' }, brokers: { type: 'string' } } });
  if (values.gen) {
    const gen = JSON.parse(values.gen) as GenOptions;
    runAsChild(() => generate(gen));
  } else {
    runFeedbackBench({ seconds: Number(values.seconds ?? 4), rounds: Number(values.rounds ?? 3), clients: Number(values.clients ?? 8), window: Number(values.window ?? 4), cpuProfDir: values['cpu-prof'], brokers: values.brokers?.split(',') as BrokerKind[] | undefined }).then(
      (r) => console.log(standalone(r)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
