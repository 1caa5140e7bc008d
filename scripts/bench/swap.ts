/**
 * Swap under load: the model registry's hot swap, measured on the daemon as users run it (a
 * child process over Mosquitto). A second version of digits-fp32 (the shipped bundle rewritten
 * as 1.1.0 with the bundle library) is installed through the admin API; then closed-loop load
 * runs on digits-fp32 in alternating phases of equal length: steady (no swaps) and swaps (the
 * serving version switched every measureMs / swapsPerPhase: `POST /models/digits-fp32/activate
 * {version: "1.1.0", force: true}` and `POST /models/digits-fp32/rollback {to: "1.0.0",
 * force: true}`, alternating). Failed and lost requests are counted over whole runs (warm-up
 * and drain included), latency over the measured windows.
 *
 * Trials are kept out of the way: the daemon's config sets registry.trial.minInferences and
 * windowSeconds far beyond the run, so no trial verdict (commit or automatic rollback) lands
 * between the bench's own swaps; every version switch is one the bench ordered.
 *
 *   npx tsx scripts/bench/swap.ts [--clients 8] [--window 4] [--seconds 6] [--cycles 2] [--swaps 20]
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readBundle, writeBundle } from '../../src/bundle/index.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { startDaemonChild, stopChild, type DaemonChild } from './daemon-child.js';
import type { LoadOptions } from './load-gen.js';
import { fmt, isMain, met, percentiles, standalone, table, type BenchResult, type TargetRow } from './report.js';
import { load, pct, rate, summary, type LoadRun } from './serving.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const samplesFile = path.join(root, 'test/fixtures/digits-sample.json');
const MODEL = 'digits-fp32';
const BASE = '1.0.0';
const NEXT = '1.1.0';
const DEVICE_ID = 'bench-swap';

export interface SwapOptions {
  clients: number;
  window: number;
  warmupMs: number;
  /** Length of each phase's measured window (steady and swaps alike). */
  measureMs: number;
  /** Steady + swaps pairs. */
  cycles: number;
  /** Swaps in all, spread evenly over the swap phases. */
  swaps: number;
}

export const defaultSwapOptions: SwapOptions = { clients: 8, window: 4, warmupMs: 1000, measureMs: 6000, cycles: 2, swaps: 20 };

/** The shipped bundle rewritten under another version with the bundle library (as test/helpers/bundles.ts makeVersion). */
async function makeVersion(src: string, version: string, dir: string): Promise<string> {
  const { manifest, files } = await readBundle(src);
  const { format: _f, artifacts: _a, ...draft } = manifest;
  const out = path.join(dir, `${manifest.name}-${version}`);
  await writeBundle(out, { ...draft, version }, files, { overwrite: true });
  return out;
}

interface Swap {
  /** The admin call's duration: load + warm-up of the target, registry write, switch. */
  ms: number;
  inWindow: boolean;
}

/** Swap `count` times, evenly spaced over `measureMs` from now; alternate activate and rollback. */
async function swapLoop(d: DaemonChild, count: number, measureMs: number, first: number, isMeasuring: () => boolean): Promise<Swap[]> {
  const swaps: Swap[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const at = t0 + ((i + 0.5) * measureMs) / count;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const k = first + i;
    const s = performance.now();
    const change =
      k % 2 === 0
        ? await d.admin<{ to: string }>('POST', `/models/${MODEL}/activate`, { version: NEXT, force: true, reason: `swap bench ${k + 1}` })
        : await d.admin<{ to: string }>('POST', `/models/${MODEL}/rollback`, { to: BASE, force: true, reason: `swap bench ${k + 1}` });
    const expected = k % 2 === 0 ? NEXT : BASE;
    if (change.to !== expected) throw new Error(`swap ${k + 1}: the daemon switched to ${change.to}, not ${expected}`);
    swaps.push({ ms: performance.now() - s, inWindow: isMeasuring() });
  }
  return swaps;
}

export async function runSwap(o: SwapOptions = defaultSwapOptions): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const mosquitto = await startMosquitto();
  const broker = mosquitto.process.pid!;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-swap-'));
  let d: DaemonChild | undefined;
  try {
    d = await startDaemonChild({
      url: mosquitto.url,
      deviceId: DEVICE_ID,
      home: path.join(tmp, 'home'),
      config: { registry: { trial: { minInferences: 1_000_000_000, windowSeconds: 1_000_000 } } },
    });
    const bundle = await makeVersion(path.join(root, 'models', MODEL), NEXT, path.join(tmp, 'bundles'));
    const installed = await d.admin<{ version: string; status: string }>('POST', '/models', { path: bundle, reason: 'swap bench' });
    if (installed.version !== NEXT) throw new Error(`installed ${JSON.stringify(installed)}, expected version ${NEXT}`);

    const opts: LoadOptions = {
      url: mosquitto.url,
      topic: `edgeloop/${DEVICE_ID}/infer/${MODEL}`,
      clients: o.clients,
      window: o.window,
      warmupMs: o.warmupMs,
      measureMs: o.measureMs,
      maxMeasured: 2_000_000,
      lostAfterMs: 6000,
      samplesFile,
    };
    const perPhase = Array.from({ length: o.cycles }, (_, c) => Math.floor(((c + 1) * o.swaps) / o.cycles) - Math.floor((c * o.swaps) / o.cycles));
    const steady: LoadRun[] = [];
    const swapping: LoadRun[] = [];
    const swaps: Swap[] = [];
    let done = 0;
    for (let c = 0; c < o.cycles; c++) {
      steady.push(await load(opts, [d.pid, broker]));
      let measuring = false;
      let loop: Promise<Swap[]> | undefined;
      const run = await load(opts, [d.pid, broker], (p) => {
        measuring = p === 'measure';
        if (p === 'measure') loop = swapLoop(d!, perPhase[c], o.measureMs, done, () => measuring);
      });
      const s = await loop!;
      swaps.push(...s);
      done += s.length;
      swapping.push(run);
    }
    const status = await d.status();
    const history = await d.admin<{ action: string; actor: string; reason: string | null }[]>('GET', `/models/${MODEL}/history?limit=1000`);
    const exit = await stopChild(d.child);
    if (exit !== 0) console.error(`daemon exited with ${exit}; last log lines:\n${d.log()}`);
    else if (d.log().trim()) console.error(`daemon warnings:\n${d.log().trim()}`);
    const served = status.models.find((m) => m.name === MODEL)!;
    // The audit log: the bench's own swaps, and any change the daemon made by itself (trial verdicts).
    const since = history.slice(0, history.findIndex((h) => h.action === 'install' && h.reason === 'swap bench')); // newest first
    const switches = since.filter((h) => String(h.reason).startsWith('swap bench ')).length;
    const bySelf = since.filter((h) => h.actor === 'daemon').length;
    return report(o, { steady, swapping, swaps, switches, bySelf, finalVersion: served.version });
  } finally {
    if (d) await stopChild(d.child, 5000);
    await mosquitto.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

function report(o: SwapOptions, r: { steady: LoadRun[]; swapping: LoadRun[]; swaps: Swap[]; switches: number; bySelf: number; finalVersion: string }): BenchResult {
  const s = summary(r.steady);
  const w = summary(r.swapping);
  const ratio = w.p99 / s.p99;
  const perCycle = r.swapping.map((x, i) => {
    const [a] = percentiles(x.result.latencies, [99]);
    const [b] = percentiles(r.steady[i].result.latencies, [99]);
    return `${fmt(a / b, 2)}x`;
  });
  const [swapP50, swapMax] = percentiles(
    r.swaps.map((x) => x.ms),
    [50, 100],
  );
  const inWindow = r.swaps.filter((x) => x.inWindow).length;
  const row = (label: string, x: ReturnType<typeof summary>, runs: LoadRun[], swaps: string) => [label, fmt(x.sent), fmt(x.failed), fmt(x.lost), fmt(x.rps), runs.map((y) => fmt(rate(y.result))).join(', '), fmt(x.p50, 2), fmt(x.p99, 2), swaps];
  const firstError = [...r.steady, ...r.swapping].find((x) => x.result.firstError)?.result.firstError;
  const ok = w.failed === 0 && w.lost === 0;
  const md = [
    `### Version swaps under load: ${MODEL}, ${o.clients} clients × ${o.window} outstanding, ${o.cycles} × (steady, swaps), ${o.measureMs / 1000} s measured per phase after ${o.warmupMs / 1000} s warm-up`,
    '',
    table(
      ['phase', 'sent', 'failed', 'lost', 'replies/s (median)', 'per run', 'p50 ms', 'p99 ms', 'swaps'],
      [
        row('steady (no swaps)', s, r.steady, '0'),
        row('swaps', w, r.swapping, `${r.swaps.length} (${inWindow} inside the measured windows); admin call p50 ${fmt(swapP50, 1)} ms, max ${fmt(swapMax, 1)} ms`),
      ],
    ),
    '',
    `The daemon child serves ${MODEL} ${BASE} (shipped) and ${NEXT} (the same bundle rewritten with writeBundle, installed with \`POST /models\`). ` +
      `Swaps alternate \`POST /models/${MODEL}/activate {version: "${NEXT}", force: true}\` and \`POST /models/${MODEL}/rollback {to: "${BASE}", force: true}\`, ` +
      `evenly spaced over each swap phase's measured window (one every ${fmt((o.measureMs * o.cycles) / o.swaps)} ms). Trials are held open (registry.trial.minInferences 1e9, windowSeconds 1e6), ` +
      `so no trial verdict switches versions on its own: the audit log holds ${r.switches} changes for the ${r.swaps.length} swaps ordered and ${r.bySelf} made by the daemon itself; ${MODEL} ended on ${r.finalVersion}. ` +
      `Sent/failed/lost cover whole runs (warm-up and drain included); a request is lost after 6 s without a reply (the daemon's deadline is 5 s). ` +
      `Latency percentiles pool the measured windows of each phase. During swaps, p50 was ${fmt(w.p50 / s.p50, 2)}x steady and throughput ${pct(w.rps / s.rps)} of steady (medians).`,
    ...(firstError ? ['', `First error reply seen: \`${firstError}\``] : []),
  ].join('\n');
  const targets: TargetRow[] = [
    ['swaps: failed + lost requests during the swap phases', `${fmt(w.failed)} failed + ${fmt(w.lost)} lost of ${fmt(w.sent)} sent, ${r.swaps.length} swaps`, '0', met(ok)],
    ['swaps: p99(swaps) / p99(steady)', `${fmt(ratio, 2)}x (${fmt(w.p99, 2)} / ${fmt(s.p99, 2)} ms; per cycle ${perCycle.join(', ')})`, '≤ 2x', met(ratio <= 2)],
  ];
  return { md, targets };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string' },
      window: { type: 'string' },
      seconds: { type: 'string' },
      cycles: { type: 'string' },
      swaps: { type: 'string' },
    },
  });
  const d = defaultSwapOptions;
  const opts: SwapOptions = {
    ...d,
    clients: Number(values.clients ?? d.clients),
    window: Number(values.window ?? d.window),
    measureMs: values.seconds ? Number(values.seconds) * 1000 : d.measureMs,
    cycles: Number(values.cycles ?? d.cycles),
    swaps: Number(values.swaps ?? d.swaps),
  };
  runSwap(opts).then(
    (r) => console.log(standalone(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
