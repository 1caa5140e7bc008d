/**
 * Investigation, not part of `npm run bench`: the cost of drift monitoring measured with both
 * daemons loaded at the same time (drift on, the default, and drift off), each by its own load
 * generator with the same closed loop. Both see exactly the same machine weather, so on a shared
 * machine their throughput ratio is far steadier than alternating runs (serving.ts), at the price
 * of an overloaded machine: the two daemons compete for the same cores, so the ratio reflects
 * their CPU cost per request. Also the peak RSS of each, treated identically.
 *
 *   npx tsx scripts/bench/drift-paired.ts [--rounds 4] [--seconds 4]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { startDaemonChild, stopChild, watchRss, type DaemonChild } from './daemon-child.js';
import type { LoadOptions } from './load-gen.js';
import { fmt, isMain, table } from './report.js';
import { closedLoop, daemonLoad, median, pct, rate, summary } from './serving.js';


export async function runDriftPaired(rounds = 4, measureMs = 4000): Promise<string> {
  const mosquitto = await startMosquitto();
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-drift-paired-'));
  const daemons: DaemonChild[] = [];
  try {
    const on = await startDaemonChild({ url: mosquitto.url, deviceId: 'paired-on', home: path.join(home, 'on') });
    daemons.push(on);
    const off = await startDaemonChild({ url: mosquitto.url, deviceId: 'paired-off', home: path.join(home, 'off'), config: { drift: { enabled: false } } });
    daemons.push(off);
    const rss = [watchRss(on.pid), watchRss(off.pid)];
    const opts = (id: string): LoadOptions => closedLoop(mosquitto.url, `edgeloop/${id}/infer/digits`, { measureMs });
    const runs: Awaited<ReturnType<typeof daemonLoad>>[][] = [];
    for (let i = 0; i < rounds; i++) runs.push(await Promise.all([daemonLoad(on, opts('paired-on'), [], 'digits'), daemonLoad(off, opts('paired-off'), [], 'digits')]));
    const peaks = rss.map((w) => w.peakKb() / 1024);
    for (const w of rss) w.stop();
    const ratios = runs.map(([a, b]) => rate(a.result) / rate(b.result));
    const sOn = summary(runs.map((r) => r[0]));
    const sOff = summary(runs.map((r) => r[1]));
    return [
      `### Drift on vs off, both daemons loaded at once (8 clients × 4 outstanding each, ${fmt(measureMs / 1000)} s after 1.5 s warm-up, ${rounds} rounds)`,
      '',
      table(
        ['daemon', 'replies/s per round', 'p50 ms', 'p99 ms', 'failed + lost', 'daemon CPU µs per reply', 'peak RSS MB'],
        [
          ['drift on (default)', runs.map((r) => fmt(rate(r[0].result))).join(', '), fmt(sOn.p50, 2), fmt(sOn.p99, 2), fmt(sOn.failed + sOn.lost), fmt(sOn.cpuUs, 1), fmt(peaks[0], 1)],
          ['drift off', runs.map((r) => fmt(rate(r[1].result))).join(', '), fmt(sOff.p50, 2), fmt(sOff.p99, 2), fmt(sOff.failed + sOff.lost), fmt(sOff.cpuUs, 1), fmt(peaks[1], 1)],
        ],
      ),
      '',
      `Throughput on / off per round: ${ratios.map((x) => pct(x, 1)).join(', ')}; drift cost (median) ${pct(1 - median(ratios), 1)}; CPU per reply ${pct(sOn.cpuUs / sOff.cpuUs - 1, 1)}.`,
    ].join('\n');
  } finally {
    for (const d of daemons) await stopChild(d.child, 5000);
    await mosquitto.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '4' } } });
  runDriftPaired(Number(values.rounds), Number(values.seconds) * 1000).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
