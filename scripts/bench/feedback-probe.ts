/**
 * Investigation: the daemon's CPU per feedback message, open loop at fixed rates. The closed-loop
 * feedback bench (feedback.ts) moves by more between runs than the cost it measures, and on 2
 * shared cores its load generator and broker pay for feedback too; this reads only the daemon
 * child's CPU (/proc) while one client sends at a fixed rate, in rounds of three phases:
 *   inference at R/s; inference at R/s with feedback at R/10 per s; feedback alone at R/10 per s.
 * Feedback names the newest predictions (still in the ring), fire and forget (QoS 0).
 * Prints each phase and the medians: feedback's CPU per message beside inference, and alone.
 *
 *   npx tsx scripts/bench/feedback-probe.ts [--rate 8000] [--seconds 5] [--rounds 5] [--max-rows N] [--cpu-prof DIR]
 *
 * --max-rows sets feedback.maxRows (default 50,000): a small store reaches its limit in the run, so
 * every flush also prunes, as on a device that has collected feedback for a while.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, startDaemonChild, stopChild } from './daemon-child.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DEVICE = 'probe-fb';
const { values } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' }, 'cpu-prof': { type: 'string' }, 'max-rows': { type: 'string' } } });
const rate = Number(values.rate ?? 8000);
const seconds = Number(values.seconds ?? 5);
const rounds = Number(values.rounds ?? 5);

const sample = JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][]; labels: number[] };
const payloads = sample.rows.map((r) => Buffer.from(JSON.stringify({ inputs: r })));
const mosquitto = await startMosquitto(undefined, 'allow_anonymous true\nset_tcp_nodelay true');
const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-fbprobe-'));
const d = await startDaemonChild({
  url: mosquitto.url,
  deviceId: DEVICE,
  home,
  config: { feedback: { ratePerSecond: 100_000, burst: 100_000, ...(values['max-rows'] ? { maxRows: Number(values['max-rows']) } : {}) }, learning: { auto: false } },
  nodeArgs: values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : [],
});
const c = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5, reconnectPeriod: 0 });
(c.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
const ids: { id: string; label: number }[] = [];
c.on('message', (_t, p, packet) => {
  const id = (JSON.parse(p.toString()) as { predictionId?: string }).predictionId;
  const k = Number(packet.properties?.correlationData?.toString() ?? 0);
  if (id) ids.push({ id, label: sample.labels[k % 20] });
});
await c.subscribeAsync('probe/fb/reply', { qos: 0 });

/** Daemon CPU seconds over a phase that sends at the given rates (1 ms ticks), its idle share taken off. */
async function phase(name: string, inferRate: number, feedbackRate: number): Promise<number> {
  let n = 0;
  let f = 0;
  const cpu0 = cpuSeconds(d.pid);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const t = (performance.now() - t0) / 1000;
      if (t >= seconds) {
        clearInterval(tick);
        resolve();
        return;
      }
      for (; n < inferRate * t; n++) {
        c.publish(`edgeloop/${DEVICE}/infer/digits`, payloads[n % 20], { qos: 0, properties: { responseTopic: 'probe/fb/reply', correlationData: Buffer.from(String(n % 20)) } });
      }
      for (; f < feedbackRate * t && ids.length; f++) {
        const x = ids.pop()!; // the newest: still in the ring
        c.publish(`edgeloop/${DEVICE}/feedback/digits`, JSON.stringify({ predictionId: x.id, label: x.label }), { qos: 0 });
      }
    }, 1);
  });
  await new Promise((r) => setTimeout(r, 300));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(d.pid) - cpu0 - idlePerSecond * secs;
  console.log(`${name.padEnd(22)} ${n} requests, ${f} feedback: daemon CPU ${(cpu * 1000).toFixed(0)} ms`);
  return cpu;
}

const cpu0 = cpuSeconds(d.pid);
await new Promise((r) => setTimeout(r, 3000));
const idlePerSecond = (cpuSeconds(d.pid) - cpu0) / 3;
console.log(`idle: ${(idlePerSecond * 100).toFixed(2)}% of a core`);
await phase('warm-up: inference', rate, 0); // fills the ring
const beside: number[] = [];
const alone: number[] = [];
const perMessage = (cpu: number) => (cpu / ((rate / 10) * seconds)) * 1e6;
for (let round = 0; round < rounds; round++) {
  const inferOnly = await phase('inference', rate, 0);
  beside.push(perMessage((await phase('inference + feedback', rate, rate / 10)) - inferOnly));
  alone.push(perMessage(await phase('feedback alone', 0, rate / 10)));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`feedback, daemon CPU per message (median of ${rounds} rounds): ${median(beside).toFixed(1)} µs beside inference at ${rate}/s; ${median(alone).toFixed(1)} µs alone at ${rate / 10}/s`);
await c.endAsync(true);
await stopChild(d.child);
await mosquitto.stop();
