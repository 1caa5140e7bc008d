/**
 * Overload: 2,048 requests kept in flight against one daemon (its own process, Mosquitto 5,
 * the digits-cnn model: slower per row than the daemon can be fed). What is read and cannot
 * be served must be refused at once (EDGELOOP_BUSY), memory must stay bounded (intake limit
 * and MQTT 5 Receive Maximum instead of a backlog), and no reply may come later than its
 * deadline plus 250 ms.
 *
 *   npx tsx scripts/bench/overload.ts            (needs dist/: npm run build)
 *   npx tsx scripts/bench/overload.ts --in-flight 4096 --seconds 20
 *   npx tsx scripts/bench/overload.ts --queue-limit 4096        (serving.queueLimit; --intake-limit, --max-batch)
 *   OVERLOAD_LOG=1 … prints the daemon's log tail and when the last reply came; OVERLOAD_NO_EXPIRY=1 sends
 *   requests without a Message Expiry Interval (to tell losses in the broker from the daemon's);
 *   OVERLOAD_TIMELINE=1 prints replies by code and their worst latency per half second of sending (=100: per 100 ms);
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir DIR' passes node flags to the daemon (a CPU profile);
 *   OVERLOAD_RAW=1 writes each request as one ready-made PUBLISH packet instead of through mqtt.js's
 *   publish (the generator shares the machine's cores: how much of the figure is the generator's).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { varintSize, writeVarint } from '../../src/transport/publish-packet.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, startDaemonChild, stopChild, watchRss, type DaemonChild } from './daemon-child.js';
import { fmt, isMain, met, percentiles, standalone, table, type BenchResult, type TargetRow } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DEVICE_ID = 'bench-overload';
const MODEL = 'digits-cnn';

export interface OverloadOptions {
  /** Requests outstanding at every moment (a reply frees a slot, the next request goes at once). */
  inFlight: number;
  clients: number;
  /** How long requests keep coming. */
  measureMs: number;
  /**
   * Replies to requests sent in this first stretch are not in the latency figures (they still count
   * for lateness and RSS): the daemon's request path is compiled by V8 while the first burst arrives.
   */
  warmupMs: number;
  /** Each request's deadline (its timeoutMs). */
  deadlineMs: number;
  /** A reply may come this much after its deadline. */
  marginMs: number;
  /** serving.* overrides for the daemon (default: the shipped defaults). */
  serving?: { queueLimit?: number; intakeLimit?: number; maxBatch?: number };
}

export const defaultOverloadOptions: OverloadOptions = { inFlight: 2048, clients: 16, measureMs: 10_000, warmupMs: 1000, deadlineMs: 5000, marginMs: 250 };

/** Per reply code: latencies (ms from send to reply). */
export interface OverloadSample {
  /** Latencies of the replies to requests sent after the warm-up. */
  byCode: Map<string, number[]>;
  /** The same for the warm-up's requests (the first burst included). */
  warmupByCode: Map<string, number[]>;
  sent: number;
  /** Requests never answered by the end (deadline + margin after the last one was sent): expired in the broker's queue. */
  unanswered: number;
  /** Replies later than deadline + margin. */
  late: number;
  worstOverDeadlineMs: number;
}

/**
 * Keep `inFlight` requests outstanding over MQTT 5 for `measureMs`, then wait for the rest up to
 * deadline + margin + 1 s. Every reply is classed by its code ('ok' when it has predictions).
 */
export async function overload(url: string, topic: string, rows: number[][], o: OverloadOptions): Promise<OverloadSample> {
  const byCode = new Map<string, number[]>();
  const warmupByCode = new Map<string, number[]>();
  const pending = new Map<string, number>();
  const started = performance.now();
  const timeline: { at: number; code: string; ms: number }[] = [];
  let sent = 0;
  let late = 0;
  let worst = -Infinity;
  let sending = true;
  let lastReplyAt = 0;
  const clients: MqttClient[] = [];
  const per = Math.ceil(o.inFlight / o.clients);
  const payloads = rows.map((r) => Buffer.from(JSON.stringify({ inputs: r, timeoutMs: o.deadlineMs })));
  const send = (c: MqttClient, replyTopic: string) => {
    const id = `${replyTopic}#${sent}`;
    pending.set(id, performance.now());
    // MQTT 5 §3.3.2.3.3: the broker counts down the expiry while the request waits for the daemon
    // to read it (backpressure), and drops it once expired; the daemon serves within what is left.
    const payload = payloads[sent++ % payloads.length];
    if (process.env.OVERLOAD_RAW) {
      (c.stream as unknown as { write(b: Buffer): boolean }).write(rawPublish(topic, payload, replyTopic, Buffer.from(id), process.env.OVERLOAD_NO_EXPIRY ? undefined : Math.ceil(o.deadlineMs / 1000)));
      return;
    }
    c.publish(topic, payload, {
      qos: 0,
      properties: { responseTopic: replyTopic, correlationData: Buffer.from(id), ...(process.env.OVERLOAD_NO_EXPIRY ? {} : { messageExpiryInterval: Math.ceil(o.deadlineMs / 1000) }) },
    });
  };
  for (let i = 0; i < o.clients; i++) {
    const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, clientId: `overload-${i}-${process.pid}` });
    const replyTopic = `bench/overload/${process.pid}/${i}`;
    c.on('message', (_t, payload, packet) => {
      const id = packet.properties?.correlationData?.toString() ?? '';
      const at = pending.get(id);
      if (at === undefined) return;
      pending.delete(id);
      const ms = performance.now() - at;
      // Only error replies are parsed: the generator shares the cores with the daemon and the
      // broker, and parsing every ok reply's predictions was a third of its CPU.
      const code = payload[2] === 0x65 /* {"e */ ? ((JSON.parse(payload.toString()) as { error?: { code: string } }).error?.code ?? 'ok') : 'ok';
      const into = at - started < o.warmupMs ? warmupByCode : byCode;
      let list = into.get(code);
      if (!list) into.set(code, (list = []));
      list.push(ms);
      worst = Math.max(worst, ms - o.deadlineMs);
      if (process.env.OVERLOAD_TIMELINE) timeline.push({ at: at - started, code, ms });
      lastReplyAt = performance.now();
      if (ms > o.deadlineMs + o.marginMs) late++;
      if (sending) send(c, replyTopic);
    });
    await c.subscribeAsync(replyTopic, { qos: 0 });
    clients.push(c);
    (c as MqttClient & { replyTopic?: string }).replyTopic = replyTopic;
  }
  // All at once: the burst is the point.
  for (const c of clients) for (let k = 0; k < per; k++) send(c, (c as MqttClient & { replyTopic?: string }).replyTopic!);
  await new Promise((r) => setTimeout(r, o.measureMs));
  sending = false;
  const until = performance.now() + o.deadlineMs + o.marginMs + 1000;
  while (pending.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
  const unanswered = pending.size;
  if (process.env.OVERLOAD_LOG) console.error(`last reply ${Math.round(lastReplyAt - (until - o.deadlineMs - o.marginMs - 1000))} ms after sending stopped`);
  await Promise.all(clients.map((c) => c.endAsync(true)));
  if (process.env.OVERLOAD_TIMELINE) {
    // Investigation: per half second of sending (OVERLOAD_TIMELINE=ms: other bins), replies by code and their worst latency.
    const bin = Number(process.env.OVERLOAD_TIMELINE) > 1 ? Number(process.env.OVERLOAD_TIMELINE) : 500;
    const slots = new Map<number, Map<string, number[]>>();
    for (const t of timeline) {
      const k = Math.floor(t.at / bin);
      const m = slots.get(k) ?? slots.set(k, new Map()).get(k)!;
      (m.get(t.code) ?? m.set(t.code, []).get(t.code)!).push(t.ms);
    }
    for (const [k, m] of [...slots].sort((a, b) => a[0] - b[0])) console.error(`${((k * bin) / 1000).toFixed(2)} s: ${[...m].map(([c, l]) => `${c} ${l.length} max ${Math.round(Math.max(...l))}`).join(', ')}`);
  }
  return { byCode, warmupByCode, sent, unanswered, late, worstOverDeadlineMs: worst };
}

/** OVERLOAD_RAW: an MQTT 5 QoS 0 PUBLISH (§3.3) with expiry, response topic and correlation data, in one buffer. */
function rawPublish(topic: string, payload: Buffer, responseTopic: string, corr: Buffer, expiry?: number): Buffer {
  const t = Buffer.from(topic);
  const rt = Buffer.from(responseTopic);
  const props = Buffer.concat([
    ...(expiry !== undefined ? [Buffer.from([0x02, (expiry >>> 24) & 255, (expiry >>> 16) & 255, (expiry >>> 8) & 255, expiry & 255])] : []),
    Buffer.from([0x08, rt.length >> 8, rt.length & 255]), rt,
    Buffer.from([0x09, corr.length >> 8, corr.length & 255]), corr,
  ]);
  const varint = (n: number) => {
    const out = Buffer.alloc(varintSize(n));
    writeVarint(out, 0, n);
    return out;
  };
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 255]), t, varint(props.length), props, payload]);
  return Buffer.concat([Buffer.from([0x30]), varint(body.length), body]);
}

export async function runOverload(o: OverloadOptions = defaultOverloadOptions): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const mosquitto = await startMosquitto();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-overload-'));
  let d: DaemonChild | undefined;
  try {
    const models = path.join(tmp, 'models');
    cpSync(path.join(root, 'models', MODEL), path.join(models, MODEL), { recursive: true });
    d = await startDaemonChild({ url: mosquitto.url, deviceId: DEVICE_ID, home: path.join(tmp, 'home'), config: { modelsDir: models, ...(o.serving ? { serving: o.serving } : {}) }, nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) });
    const rss = watchRss(d.pid);
    const baseKb = rss.peakKb();
    const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;
    // CPU of each part while loaded: on one machine the generator and the broker take cores the daemon would have.
    const cpu0 = [cpuSeconds(d.pid), cpuSeconds(mosquitto.process.pid!), process.cpuUsage()] as const;
    const t0 = performance.now();
    const s = await overload(mosquitto.url, `edgeloop/${DEVICE_ID}/infer/${MODEL}`, rows, o);
    const wall = (performance.now() - t0) / 1000;
    const gen = process.cpuUsage(cpu0[2]);
    const cpuShare = [cpuSeconds(d.pid) - cpu0[0], cpuSeconds(mosquitto.process.pid!) - cpu0[1], (gen.user + gen.system) / 1e6].map((c) => c / wall);
    const peakKb = rss.peakKb();
    if (process.env.OVERLOAD_LOG) console.error(d.log());
    rss.stop();
    const busy = s.byCode.get('EDGELOOP_BUSY') ?? [];
    const [busyP50, busyP99] = percentiles(busy, [50, 99]);
    const [warmBusyP99] = percentiles(s.warmupByCode.get('EDGELOOP_BUSY') ?? [], [99]);
    const replies = [...s.byCode.values(), ...s.warmupByCode.values()].reduce((n, l) => n + l.length, 0);
    const rowsOf = (m: Map<string, number[]>, when: string) =>
      [...m.entries()]
        .sort((a, b) => b[1].length - a[1].length)
        .map(([code, l]) => {
          const [p50, p99, max] = percentiles(l, [50, 99, 100]);
          return [code, when, fmt(l.length), fmt(p50, 1), fmt(p99, 1), fmt(max, 1)];
        });
    const rowsOut = [...rowsOf(s.byCode, `sent after the first ${fmt(o.warmupMs / 1000, 1)} s`), ...rowsOf(s.warmupByCode, `sent in the first ${fmt(o.warmupMs / 1000, 1)} s (the burst of ${fmt(o.inFlight)} included)`)];
    const md = [
      `### Overload: ${fmt(o.inFlight)} requests in flight (${MODEL}, Mosquitto 5, ${o.clients} clients, ${o.measureMs / 1000} s, deadline ${o.deadlineMs} ms${o.serving ? `, serving ${JSON.stringify(o.serving)}` : ''}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`,
      '',
      table(['reply', 'requests', 'count', 'p50 ms', 'p99 ms', 'max ms'], rowsOut),
      '',
      `${fmt(s.sent)} sent, ${fmt(replies)} replies, ${fmt(s.unanswered)} unanswered; daemon RSS ${fmt(baseKb / 1024)} MB before, peak ${fmt(peakKb / 1024)} MB; ` +
        `latest reply ${fmt(s.worstOverDeadlineMs)} ms after its deadline. Requests carry an MQTT 5 Message Expiry Interval of ` +
        `${Math.ceil(o.deadlineMs / 1000)} s: unanswered ones expired in the broker while the daemon was not reading (backpressure). ` +
        `Cores used while loaded: daemon ${fmt(cpuShare[0], 2)}, broker ${fmt(cpuShare[1], 2)}, load generator ${fmt(cpuShare[2], 2)}.`,
    ].join('\n');
    const targets: TargetRow[] = [
      [`overload (${fmt(o.inFlight)} in flight): EDGELOOP_BUSY p99`, busy.length ? `${fmt(busyP99, 1)} ms (p50 ${fmt(busyP50, 1)}, ${fmt(busy.length)} replies after the first ${fmt(o.warmupMs / 1000, 1)} s; in it, the first burst included: p99 ${fmt(warmBusyP99, 1)} ms)` : 'no BUSY reply', '< 100 ms', met(busy.length > 0 && busyP99 < 100)],
      ['overload: daemon peak RSS', `${fmt(peakKb / 1024)} MB`, '< 250 MB', met(peakKb / 1024 < 250)],
      ['overload: replies later than deadline + 250 ms', `${fmt(s.late)} of ${fmt(replies)} (${fmt(s.unanswered)} expired unanswered in the broker)`, '0', met(s.late === 0)],
    ];
    return { md, targets };
  } finally {
    if (d) await stopChild(d.child);
    await mosquitto.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { 'in-flight': { type: 'string' }, seconds: { type: 'string' }, clients: { type: 'string' }, 'queue-limit': { type: 'string' }, 'intake-limit': { type: 'string' }, 'max-batch': { type: 'string' } } });
  const o: OverloadOptions = {
    ...defaultOverloadOptions,
    ...(values['in-flight'] ? { inFlight: Number(values['in-flight']) } : {}),
    ...(values.seconds ? { measureMs: Number(values.seconds) * 1000 } : {}),
    ...(values.clients ? { clients: Number(values.clients) } : {}),
  };
  if (values['queue-limit'] || values['intake-limit'] || values['max-batch']) {
    o.serving = {
      ...(values['queue-limit'] ? { queueLimit: Number(values['queue-limit']) } : {}),
      ...(values['intake-limit'] ? { intakeLimit: Number(values['intake-limit']) } : {}),
      ...(values['max-batch'] ? { maxBatch: Number(values['max-batch']) } : {}),
    };
  }
  runOverload(o).then(
    (r) => console.log(standalone(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
