/**
 * Investigation, not part of `npm run bench`: where a light-load request's time goes. One client,
 * one request outstanding, against a daemon child: round trip at the client, the daemon's own
 * latency (`GET /status` p50Ms), and the same client against the echo responder.
 *
 *   npx tsx scripts/bench/light-probe.ts [--requests 3000]
 *   PROBE_PROF=/tmp/prof PROBE_PAUSE=5000 npx tsx scripts/bench/light-probe.ts   # CPU profile of the daemon; time to attach strace
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { startDaemonChild, stopChild } from './daemon-child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values } = parseArgs({ options: { requests: { type: 'string' } } });
const N = Number(values.requests ?? 3000);
const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;

async function roundTrips(url: string, topic: string): Promise<number[]> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `probe-${process.pid}-${Math.random()}`, reconnectPeriod: 0 });
  (c.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
  const replyTopic = `probe/${process.pid}/r`;
  await c.subscribeAsync(replyTopic, { qos: 0 });
  const out: number[] = [];
  let resolveOne: (() => void) | undefined;
  c.on('message', () => resolveOne?.());
  for (let i = 0; i < N + 500; i++) {
    const t = performance.now();
    await new Promise<void>((resolve) => {
      resolveOne = resolve;
      c.publish(topic, JSON.stringify({ inputs: rows[i % rows.length] }), { qos: 0, properties: { responseTopic: replyTopic, correlationData: Buffer.from(String(i)) } });
    });
    if (i >= 500) out.push(performance.now() - t);
  }
  await c.endAsync();
  return out.sort((a, b) => a - b);
}

const p = (xs: number[], q: number) => xs[Math.floor(q * (xs.length - 1))];
const mosquitto = await startMosquitto();
const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-light-'));
try {
  const d = await startDaemonChild({ url: mosquitto.url, deviceId: 'light', home, nodeArgs: process.env.PROBE_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROBE_PROF] : [] });
  if (process.env.PROBE_PAUSE) {
    console.log('daemon pid', d.pid);
    await new Promise((r) => setTimeout(r, Number(process.env.PROBE_PAUSE)));
  }
  const daemon = await roundTrips(mosquitto.url, 'edgeloop/light/infer/digits');
  const st = await d.status();
  const digits = st.models.find((m) => m.name === 'digits');
  await stopChild(d.child);
  const reply = JSON.stringify({ model: 'digits', version: '1.0.0', predictions: [{ label: '0', index: 0, confidence: 1, probabilities: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] }], latencyMs: 0.1 });
  const echo = fork(path.join(here, 'echo-responder.ts'), [JSON.stringify({ url: mosquitto.url, filter: 'edgeloop/echo/infer/+', reply })], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  await new Promise((r) => echo.once('message', r));
  const e = await roundTrips(mosquitto.url, 'edgeloop/echo/infer/digits');
  echo.kill('SIGTERM');
  console.log(`daemon round trip p50 ${p(daemon, 0.5).toFixed(3)} ms, p90 ${p(daemon, 0.9).toFixed(3)}; in-daemon p50 ${digits?.p50Ms} ms`);
  console.log(`echo   round trip p50 ${p(e, 0.5).toFixed(3)} ms, p90 ${p(e, 0.9).toFixed(3)}`);
  console.log(`added p50 ${(p(daemon, 0.5) - p(e, 0.5)).toFixed(3)} ms`);
} finally {
  await mosquitto.stop();
  rmSync(home, { recursive: true, force: true });
}
process.exit(0);
