/**
 * Node flags A/B: two daemon children (demo bundles, Mosquitto) side by side, one with the
 * deployed flags plus `--a`, one plus `--b`; closed-loop load on each in alternating rounds (the
 * serving bench's load), so both see the same machine. Throughput, daemon CPU per reply, idle RSS
 * after settling, and peak RSS under load, per side.
 *
 *   npx tsx scripts/bench/node-flags.ts --a='' --b='--max-semi-space-size=2' [--rounds 6] [--settle 20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { deployedNodeFlags, startDaemonChild, stopChild, watchRss } from './daemon-child.js';
import { fmt, isMain, percentiles, table } from './report.js';
import { closedLoop, load, median, rate } from './serving.js';


export async function runNodeFlags(a: string[], b: string[], rounds: number, settleMs: number): Promise<string> {
  const mosquitto = await startMosquitto();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-flags-'));
  const sides = [
    { label: a.join(' ') || '(deployed only)', id: 'flags-a', args: a },
    { label: b.join(' ') || '(deployed only)', id: 'flags-b', args: b },
  ];
  const children = [];
  try {
    for (const s of sides) children.push(await startDaemonChild({ url: mosquitto.url, deviceId: s.id, home: path.join(tmp, s.id), nodeArgs: s.args }));
    await new Promise((r) => setTimeout(r, settleMs));
    const idle = children.map((c) => watchRss(c.pid));
    const idleKb = idle.map((w) => w.peakKb());
    const runs: Awaited<ReturnType<typeof load>>[][] = [[], []];
    for (let i = 0; i < rounds; i++) {
      for (const k of i % 2 ? [1, 0] : [0, 1]) {
        const opts = closedLoop(mosquitto.url, `edgeloop/${sides[k].id}/infer/digits`);
        runs[k].push(await load(opts, [children[k].pid, mosquitto.process.pid!]));
      }
    }
    const peakKb = idle.map((w) => w.peakKb());
    for (const w of idle) w.stop();
    const rows = sides.map((s, k) => {
      const rps = runs[k].map((r) => rate(r.result));
      const cpuUs = (runs[k].reduce((n, r) => n + r.cpu[0] * r.result.measuredMs, 0) / 1000 / runs[k].reduce((n, r) => n + r.result.measured, 0)) * 1e6;
      const [p50, p99] = percentiles(runs[k].flatMap((r) => r.result.latencies), [50, 99]);
      return [s.label, fmt(median(rps)), rps.map((x) => fmt(x)).join(', '), `${fmt(p50, 2)} / ${fmt(p99, 2)}`, fmt(cpuUs, 1), fmt(idleKb[k] / 1024, 1), fmt(peakKb[k] / 1024, 1)];
    });
    const ratio = median(runs[1].map((r, i) => rate(r.result) / rate(runs[0][i].result)));
    return [
      `### Node flags A/B (deployed: \`${deployedNodeFlags().join(' ')}\`), demo bundles, Mosquitto, ${rounds} alternating rounds of 4 s`,
      '',
      table(['flags added', 'replies/s (median)', 'per round', 'p50 / p99 ms', 'daemon CPU µs per reply', `RSS after ${settleMs / 1000} s idle, MB`, 'peak RSS under load, MB'], rows),
      '',
      `B / A throughput, median of per-round ratios: ${fmt(ratio * 100)}%.`,
    ].join('\n');
  } finally {
    for (const c of children) await stopChild(c.child, 5000);
    await mosquitto.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { a: { type: 'string', default: '' }, b: { type: 'string', default: '' }, rounds: { type: 'string', default: '6' }, settle: { type: 'string', default: '20' } } });
  const split = (s: string) => s.split(' ').filter(Boolean);
  runNodeFlags(split(values.a!), split(values.b!), Number(values.rounds), Number(values.settle) * 1000).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
