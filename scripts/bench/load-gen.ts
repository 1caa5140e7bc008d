/**
 * Closed-loop MQTT 5 load generator, run as a child process (forked with IPC) so that it never
 * shares an event loop with the daemon it measures. Each client keeps `window` requests
 * outstanding (response topic + correlation data, QoS 0) and sends the next one as soon as a
 * reply comes back. Phases: warm-up (not recorded), measure (until measureMs or maxMeasured
 * replies, whichever first), drain (stop sending, wait for stragglers; what never comes is lost).
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';

export interface LoadOptions {
  url: string;
  topic: string;
  clients: number;
  window: number;
  warmupMs: number;
  measureMs: number;
  /** Stop measuring after this many replies (light-load runs); also bounds memory. */
  maxMeasured: number;
  /** A request with no reply after this long counts as lost and frees its window slot. */
  lostAfterMs: number;
  /** JSON file of { rows: number[][] }: request payloads cycle through its rows. */
  samplesFile: string;
}

export interface LoadResult {
  sent: number;
  replies: number;
  failed: number;
  lost: number;
  late: number;
  measured: number;
  measuredMs: number;
  /** Latencies (ms) of the replies received while measuring. */
  latencies: number[];
  replyBytes: number;
  sampleReply: string;
  firstError?: string;
}

export type LoadMessage = { type: 'phase'; phase: 'measure' | 'drain' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

async function run(o: LoadOptions, onPhase: (p: 'measure' | 'drain') => void): Promise<LoadResult> {
  const rows = (JSON.parse(readFileSync(o.samplesFile, 'utf8')) as { rows: number[][] }).rows;
  const payloads = rows.map((r) => Buffer.from(JSON.stringify({ inputs: r })));
  const latencies = new Float64Array(o.maxMeasured);
  const r: LoadResult = { sent: 0, replies: 0, failed: 0, lost: 0, late: 0, measured: 0, measuredMs: 0, latencies: [], replyBytes: 0, sampleReply: '' };
  let phase: 'warmup' | 'measure' | 'drain' = 'warmup';
  let measureStart = 0;
  let next = 0;

  const clients: { client: MqttClient; pending: Map<number, number>; seq: number; replyTopic: string }[] = [];
  for (let i = 0; i < o.clients; i++) {
    const client = await mqtt.connectAsync(o.url, { protocolVersion: 5, clientId: `bench-gen-${process.pid}-${i}`, reconnectPeriod: 0, clean: true });
    const c = { client, pending: new Map<number, number>(), seq: 0, replyTopic: `bench/replies/${process.pid}/${i}` };
    await client.subscribeAsync(c.replyTopic, { qos: 0 });
    clients.push(c);
  }

  const send = (c: (typeof clients)[number]) => {
    const seq = c.seq++ >>> 0;
    const correlationData = Buffer.allocUnsafe(4);
    correlationData.writeUInt32BE(seq);
    c.pending.set(seq, performance.now());
    r.sent++;
    c.client.publish(o.topic, payloads[next++ % payloads.length], { qos: 0, properties: { responseTopic: c.replyTopic, correlationData } });
  };

  const finishMeasure = () => {
    if (phase !== 'measure') return;
    phase = 'drain';
    r.measuredMs = performance.now() - measureStart;
    onPhase('drain');
  };

  for (const c of clients) {
    c.client.on('message', (_topic, payload, packet) => {
      const now = performance.now();
      const cd = packet.properties?.correlationData;
      const t0 = cd && cd.length === 4 ? c.pending.get(cd.readUInt32BE(0)) : undefined;
      if (t0 === undefined) {
        r.late++; // answered after it was counted lost (or a foreign message)
        return;
      }
      c.pending.delete(cd!.readUInt32BE(0));
      r.replies++;
      r.replyBytes += payload.length;
      // Error replies start with {"error": ...; a cheap test keeps the generator light.
      if (payload.includes('"error"')) {
        r.failed++;
        r.firstError ??= payload.toString().slice(0, 300);
      } else if (!r.sampleReply) r.sampleReply = payload.toString();
      if (phase === 'measure') {
        latencies[r.measured++] = now - t0;
        if (r.measured >= o.maxMeasured) finishMeasure();
      }
      if (phase !== 'drain') send(c);
    });
  }

  // Lost requests free their slot so one dropped QoS 0 message does not shrink the window.
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const c of clients) {
      for (const [seq, t0] of c.pending) {
        if (now - t0 < o.lostAfterMs) continue;
        c.pending.delete(seq);
        r.lost++;
        if (phase !== 'drain') send(c);
      }
    }
  }, 100);

  for (const c of clients) for (let w = 0; w < o.window; w++) send(c);
  await new Promise((res) => setTimeout(res, o.warmupMs));
  phase = 'measure';
  measureStart = performance.now();
  onPhase('measure');
  const until = Date.now() + o.measureMs;
  while (phase === 'measure' && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
  finishMeasure();

  // Drain: bounded wait for outstanding replies.
  const drainUntil = Date.now() + Math.min(o.lostAfterMs, 3000);
  while (clients.some((c) => c.pending.size > 0) && Date.now() < drainUntil) await new Promise((res) => setTimeout(res, 20));
  clearInterval(sweeper);
  for (const c of clients) r.lost += c.pending.size;
  await Promise.all(clients.map((c) => c.client.endAsync(true)));
  r.latencies = Array.from(latencies.subarray(0, r.measured));
  return r;
}

// Child-process entry: options come as one JSON argument, results go back over IPC.
if (process.send && process.argv[2]) {
  const send = (m: LoadMessage, then?: () => void) => process.send!(m, undefined, {}, () => then?.());
  // Disconnect only once the (large) result is written, or it can be dropped.
  run(JSON.parse(process.argv[2]) as LoadOptions, (phase) => send({ type: 'phase', phase })).then(
    (result) => send({ type: 'result', result }, () => process.disconnect()),
    (err: Error) => send({ type: 'error', message: err.stack ?? err.message }, () => process.disconnect()),
  );
}
