/**
 * Feedback benchmark: the cost of labelled feedback to serving, and the prediction ring's memory.
 * One daemon child (`node bin/edgeloop.js serve`, over a real Mosquitto) is loaded by a
 * closed-loop MQTT 5 generator (a child process: this file with --gen) in two modes that
 * alternate (ABBA) in the same run: inference only, and inference with 10% of the replies
 * followed by a feedback message naming their predictionId. Throughput is replies per second
 * over the measured window; the cost is the drop from the first mode to the second.
 *
 *   npx tsx scripts/bench/feedback.ts [--seconds 4] [--rounds 3] [--clients 8] [--window 4]
 *       [--cpu-prof DIR] [--broker-nodelay]   (investigation only)
 */
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { PredictionRing } from '../../src/feedback/index.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { startDaemonChild, stopChild } from './daemon-child.js';
import { fmt, isMain, met, standalone, table, type BenchResult } from './report.js';

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
  replies: number;
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
  const result = { replies, feedback, seconds, cpu: (used.user + used.system) / 1e6 / seconds };
  phase = 'done';
  await new Promise((r) => setTimeout(r, 500));
  await Promise.all(clients.map((c) => c.endAsync(true)));
  return result;
}

function runGen(o: GenOptions): Promise<GenResult> {
  const child = fork(fileURLToPath(import.meta.url), ['--gen', JSON.stringify(o)], { cwd: root, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: GenResult) => resolve(m));
    child.once('exit', (code) => reject(new Error(`generator exited (${code}) without a result`)));
  });
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
  /** Mosquitto with set_tcp_nodelay (investigation: Nagle in the broker couples the two message streams). */
  brokerNoDelay?: boolean;
}

export async function runFeedbackBench(o: FeedbackBenchOptions = { seconds: 4, rounds: 3, clients: 8, window: 4 }): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const mosquitto = await startMosquitto(undefined, o.brokerNoDelay ? 'allow_anonymous true\nset_tcp_nodelay true' : undefined);
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-fb-'));
  // A rate limit well above the offered feedback: the bench measures the cost, not the limiter.
  const d = await startDaemonChild({ url: mosquitto.url, deviceId: DEVICE, home, config: { feedback: { ratePerSecond: 100_000, burst: 100_000 } }, nodeArgs: o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [] });
  try {
    const gen = (feedbackEvery: number): GenOptions => ({ url: mosquitto.url, clients: o.clients, window: o.window, warmupMs: 1000, measureMs: o.seconds * 1000, feedbackEvery });
    const none: GenResult[] = [];
    const fb: GenResult[] = [];
    for (let i = 0; i < o.rounds; i++) {
      for (const mode of i % 2 ? ['fb', 'none'] : ['none', 'fb']) {
        if (mode === 'none') none.push(await runGen(gen(0)));
        else fb.push(await runGen(gen(10)));
      }
    }
    const status = await d.admin<{ models: { model: string; ring: { rows: number; bytes: number }; stored: { rows: number } | null; accepted: number; refused: Record<string, number> }[] }>('GET', '/feedback');
    const m = status.models.find((x) => x.model === MODEL);
    const rate = (r: GenResult[]) => r.map((x) => x.replies / x.seconds).sort((a, b) => a - b)[Math.floor(r.length / 2)];
    const base = rate(none);
    const withFb = rate(fb);
    const cost = 1 - withFb / base;
    const ring = measureRing(64, 20_000);
    const md = [
      '### Feedback: serving cost and prediction ring',
      '',
      `One daemon over Mosquitto, ${o.clients} MQTT 5 clients × ${o.window} outstanding, ${o.seconds} s windows, ${o.rounds} rounds of each mode (ABBA); median replies/s.`,
      '',
      table(
        ['mode', 'replies/s (median)', 'runs', 'feedback msgs/s', 'generator CPU'],
        [
          ['inference only', fmt(base), none.map((r) => fmt(r.replies / r.seconds)).join(', '), '0', none.map((r) => `${fmt(r.cpu * 100)}%`).join(', ')],
          ['10% of replies followed by feedback', fmt(withFb), fb.map((r) => fmt(r.replies / r.seconds)).join(', '), fmt(fb.reduce((a, r) => a + r.feedback / r.seconds, 0) / fb.length), fb.map((r) => `${fmt(r.cpu * 100)}%`).join(', ')],
        ],
      ),
      '',
      table(
        ['prediction ring', 'value'],
        [
          ['default size (feedback.ringSize)', '20,000 rows of 64 float32'],
          ['computed bytes (chunks of 1,024 rows)', `${fmt(ring.computed / 2 ** 20, 2)} MiB`],
          ['measured (ArrayBuffer growth when filled)', `${fmt(ring.measured / 2 ** 20, 2)} MiB`],
          ['daemon after the run (GET /feedback)', `${fmt((m?.ring.rows ?? 0))} rows, ${fmt((m?.ring.bytes ?? 0) / 2 ** 20, 2)} MiB`],
          ['labelled rows stored during the run', fmt(m?.stored?.rows ?? 0)],
        ],
      ),
    ].join('\n');
    return {
      md,
      targets: [
        ['serving cost of 10% feedback', `${fmt(cost * 100, 1)}%`, '≤ 3%', met(cost <= 0.03)],
        ['prediction ring at 20,000 rows (digits)', `${fmt(ring.measured / 2 ** 20, 1)} MiB`, 'measured', 'met'],
      ],
    };
  } finally {
    const exit = await stopChild(d.child);
    if (exit !== 0) console.error(`daemon exited with ${exit}; last log lines:\n${d.log()}`);
    await mosquitto.stop();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { gen: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' }, clients: { type: 'string' }, window: { type: 'string' }, 'cpu-prof': { type: 'string' }, 'broker-nodelay': { type: 'boolean' } } });
  if (values.gen) {
    generate(JSON.parse(values.gen) as GenOptions).then(
      (r) => process.send!(r, () => process.exit(0)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  } else {
    runFeedbackBench({ seconds: Number(values.seconds ?? 4), rounds: Number(values.rounds ?? 3), clients: Number(values.clients ?? 8), window: Number(values.window ?? 4), cpuProfDir: values['cpu-prof'], brokerNoDelay: values['broker-nodelay'] }).then(
      (r) => console.log(standalone(r)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
