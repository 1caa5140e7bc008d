/**
 * Investigation, not part of `npm run bench`: light-load A/B. Daemons with different node flags or
 * builds (each from its own checkout, `cwd`, built) and the echo responder (answering with a real
 * reply's text) on one broker; one client, one request outstanding, cycling through them in blocks of
 * BLOCK requests so that all see the same machine weather (light-probe's sequential daemon-then-echo
 * phases differ by ±0.1 ms on a shared 2-core box). Prints p50, p50 minus echo's, p50 per quarter
 * of the run (JIT warm-up shows as a falling trend), RSS and CPU. Each daemon runs with
 * --max-semi-space-size=4 and then its `args`.
 *
 *   AB='[{"name":"base","cwd":"CHECKOUT_A","args":[]},{"name":"x","cwd":"CHECKOUT_B","args":["--some-flag"]}]' npx tsx scripts/bench/light-ab.ts
 *   env: N (measured requests per target, 3000), WARM (500), BLOCK (50)
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { cpuSeconds, waitOnline, stopChild } from './daemon-child.js';
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const N = Number(process.env.N ?? 3000);
const WARM = Number(process.env.WARM ?? 500);
const BLOCK = Number(process.env.BLOCK ?? 50);
const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;
const variants = JSON.parse(process.env.AB!) as { name: string; cwd: string; args: string[]; config?: unknown }[];
const mosquitto = await startMosquitto();
const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-ab-'));
const children: ReturnType<typeof spawn>[] = [];
try {
  for (const [i, v] of variants.entries()) {
    const h = path.join(home, `d${i}`);
    const args = ['bin/edgeloop.js', 'serve', '--broker', mosquitto.url, '--device-id', `ab${i}`, '--log-level', 'warn', '--home', h];
    const child = spawn(process.execPath, ['--max-semi-space-size=4', ...v.args, ...args], { cwd: v.cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    await waitOnline(mosquitto.url, `ab${i}`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const idle = children.map((ch) => [rssMb(ch.pid!), cpuSeconds(ch.pid!)]);
  // The echo answers with a real daemon reply's text (as the serving bench does).
  const reply = JSON.stringify({ model: 'digits', version: '1.0.0', predictions: [{ label: '3', index: 3, confidence: 0.997712, probabilities: [0.000011, 0.000002, 0.000118, 0.997712, 0.000001, 0.001566, 0.000001, 0.000034, 0.000496, 0.000059] }], latencyMs: 0.093, predictionId: 'a3f1c2d4e5b6a7f8' });
  const echo = fork(path.join(here, 'echo-responder.ts'), [JSON.stringify({ url: mosquitto.url, filter: 'edgeloop/echo/infer/+', reply })], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  await new Promise((r) => echo.once('message', r));
  const topics = [...variants.map((_, i) => `edgeloop/ab${i}/infer/digits`), 'edgeloop/echo/infer/digits'];
  const names = [...variants.map((v) => v.name), 'echo'];
  const c = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 5, clientId: `ab-${process.pid}`, reconnectPeriod: 0 });
  (c.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
  const replyTopic = `ab/${process.pid}/r`;
  await c.subscribeAsync(replyTopic, { qos: 0 });
  let resolveOne: (() => void) | undefined;
  c.on('message', () => resolveOne?.());
  const out = topics.map(() => [] as number[]);
  for (let i = 0; i < (N + WARM) * topics.length; i++) {
    const k = Math.floor(i / BLOCK) % topics.length;
    const t = performance.now();
    await new Promise<void>((resolve) => {
      resolveOne = resolve;
      c.publish(topics[k], JSON.stringify({ inputs: rows[i % rows.length] }), { qos: 0, properties: { responseTopic: replyTopic, correlationData: Buffer.from(String(i)) } });
    });
    if (i >= WARM * topics.length) out[k].push((performance.now() - t) * 1000);
  }
  await c.endAsync();
  const after = children.map((ch) => [rssMb(ch.pid!), cpuSeconds(ch.pid!)]);
  echo.kill('SIGTERM');
  const med = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const eMed = med(out[out.length - 1]);
  const CH = Math.floor(N / 4);
  for (const [k, xs] of out.entries()) {
    const chunks = [0, 1, 2, 3].map((j) => med(xs.slice(j * CH, (j + 1) * CH)).toFixed(0)).join(' ');
    const mem = k < children.length ? `  idle RSS ${idle[k][0].toFixed(0)} MB, startup CPU ${idle[k][1].toFixed(2)} s, after RSS ${after[k][0].toFixed(0)} MB, run CPU ${(after[k][1] - idle[k][1]).toFixed(2)} s` : '';
    console.log(`${names[k].padEnd(12)} p50 ${med(xs).toFixed(1).padStart(6)} us  added ${(med(xs) - eMed).toFixed(1).padStart(6)} us   p50 by quarter: ${chunks}${mem}`);
  }
} finally {
  for (const ch of children) await stopChild(ch);
  await mosquitto.stop();
  rmSync(home, { recursive: true, force: true });
}
process.exit(0);
