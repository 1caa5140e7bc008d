/**
 * Resident memory of the daemon: where it goes, and what it is idle and under load.
 *
 * 1. Stages of a start, in a child of plain node with the deployed flags
 *    (scripts/bench/memory-stages.mjs): bare node, the CLI's and the daemon's module graph,
 *    the embedded broker, onnxruntime, each bundle loaded (tfjs when the first tfjs bundle
 *    needs it), serving, idle. VmRSS split into anonymous and file-backed (node, libonnxruntime:
 *    code pages) from /proc/self/smaps_rollup; median of `runs` children per stage.
 * 2. The daemon as users run it (`node bin/edgeloop.js serve`, deployed flags): RSS one second
 *    after it is online and after `settleMs` idle (V8 shrinks its heap when idle), on the
 *    embedded broker (`npm start`) and on Mosquitto, then the peak under the serving bench's
 *    closed-loop load (8 clients × 4 outstanding digits requests, MQTT 5, `rounds` × 4 s).
 *    Once with the demo bundles (models/), once with a single ONNX bundle (digits).
 *
 *   npx tsx scripts/bench/memory.ts [--runs 3] [--settle 30] [--rounds 5]   (needs dist/: npm run build)
 *       [--daemon-node-args='--max-semi-space-size=2']   (investigation only: after the deployed flags)
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, startMosquitto } from '../../test/helpers/mosquitto.js';
import { deployedNodeFlags, startDaemonChild, stopChild, watchRss, type DaemonChild } from './daemon-child.js';
import { fmt, isMain, met, standalone, table, type BenchResult, type TargetRow } from './report.js';
import { closedLoop, load, median, rate } from './serving.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const MODEL = 'digits';

export interface MemoryOptions {
  /** Stage children per model set (medians per stage). */
  runs: number;
  /** Idle time before the settled reading. */
  settleMs: number;
  /** Load rounds (1.5 s warm-up + 4 s measured each) for the peak. */
  rounds: number;
  /** Extra node flags for every daemon and stage child (investigation only). */
  nodeArgs?: string[];
}

export const defaultMemoryOptions: MemoryOptions = { runs: 3, settleMs: 30_000, rounds: 5 };

/** Resident kB by kind at one stage (see memory-stages.mjs), and V8's heap used (bytes). */
interface StageSample {
  stage: string;
  rssKb: number;
  heapUsed: number;
  node: number;
  onnxruntime: number;
  otherFiles: number;
  v8Heap: number;
  mallocMain: number;
  threadArenas: number;
  anon: number;
}
type Kind = Exclude<keyof StageSample, 'stage' | 'rssKb' | 'heapUsed'>;

const KIND_LABELS: [Kind, string][] = [
  ['node', 'node binary (file-backed code)'],
  ['onnxruntime', 'libonnxruntime + binding (file-backed code)'],
  ['otherFiles', 'other libraries, SQLite files (file-backed)'],
  ['v8Heap', 'V8 heap (JavaScript objects, code, source text)'],
  ['mallocMain', 'malloc, main thread (ORT sessions and kernel registry, SQLite, Node and mqtt buffers)'],
  ['threadArenas', 'malloc, other threads (V8 compiler and GC helpers, libuv pool)'],
  ['anon', 'other anonymous (thread stacks, wasm memory)'],
];

/** One stage child: its samples in order. */
function stageRun(modelsDir: string, home: string, nodeArgs: string[]): Promise<StageSample[]> {
  return new Promise((resolve, reject) => {
    void freePort().then((port) => {
      const args = [...deployedNodeFlags(), ...nodeArgs, 'scripts/bench/memory-stages.mjs', JSON.stringify({ home, modelsDir, port })];
      const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b));
      child.stderr.on('data', (b: Buffer) => (err += b));
      child.once('exit', (code) => {
        if (code !== 0) return reject(new Error(`memory-stages exited with ${code}: ${err.slice(-2000)}`));
        resolve(out.trim().split('\n').map((l) => JSON.parse(l) as StageSample));
      });
    }, reject);
  });
}

/** Stage table: the median over runs of each stage (same stages, same order in every run), and the last stage (idle). */
async function stages(label: string, modelsDir: string, o: MemoryOptions, tmp: string): Promise<{ stages: string; idle: StageSample }> {
  const all: StageSample[][] = [];
  for (let i = 0; i < o.runs; i++) all.push(await stageRun(modelsDir, path.join(tmp, `stages-${label}-${i}`), o.nodeArgs ?? []));
  const mb = (kb: number) => fmt(kb / 1024, 1);
  const medians = all[0].map((first, i) => {
    const at = (f: (s: StageSample) => number) => median(all.map((r) => f(r[i])));
    return { stage: first.stage, rssKb: at((s) => s.rssKb), heapUsed: at((s) => s.heapUsed), ...Object.fromEntries(KIND_LABELS.map(([k]) => [k, at((s) => s[k])])) } as StageSample;
  });
  const rows = medians.map((m, i) => {
    const d = i === 0 ? NaN : m.rssKb - medians[i - 1].rssKb;
    return [m.stage, mb(m.rssKb), i === 0 ? '' : `${d >= 0 ? '+' : ''}${mb(d)}`, mb(m.node + m.otherFiles), mb(m.onnxruntime), mb(m.v8Heap), fmt(m.heapUsed / 2 ** 20, 1), mb(m.mallocMain), mb(m.threadArenas)];
  });
  const headers = ['stage', 'RSS MB', 'Δ MB', 'node + other code, MB', 'libonnxruntime, MB', 'V8 heap, MB', '(heap used)', 'malloc main, MB', 'malloc threads, MB'];
  return { stages: table(headers, rows), idle: medians[medians.length - 1] };
}

/** VmRSS and anonymous memory (kB) of a process now. */
function rssOf(pid: number): { rssKb: number; anonKb: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rssKb: kb('Rss'), anonKb: kb('Anonymous') };
}

interface DaemonMemory {
  label: string;
  embedded: { online: number; settled: { rssKb: number; anonKb: number }; heapUsed: number };
  external: { online: number; settled: { rssKb: number; anonKb: number }; heapUsed: number };
  peakKb: number;
  rps: number;
  failed: number;
}

/** The daemon as run: embedded-broker and Mosquitto twins idle side by side, then load on the Mosquitto one. */
async function daemonMemory(label: string, modelsDir: string, o: MemoryOptions, tmp: string, mosquitto: { url: string; pid: number }): Promise<DaemonMemory> {
  const config = { modelsDir };
  const children: DaemonChild[] = [];
  try {
    const nodeArgs = o.nodeArgs;
    const emb = await startDaemonChild({ deviceId: `mem-emb-${label}`, home: path.join(tmp, `emb-${label}`), config, nodeArgs });
    children.push(emb);
    const ext = await startDaemonChild({ url: mosquitto.url, deviceId: `mem-ext-${label}`, home: path.join(tmp, `ext-${label}`), config, nodeArgs });
    children.push(ext);
    await new Promise((r) => setTimeout(r, 1000));
    const online = [rssOf(emb.pid).rssKb, rssOf(ext.pid).rssKb];
    await new Promise((r) => setTimeout(r, o.settleMs));
    const [se, sx] = [rssOf(emb.pid), rssOf(ext.pid)];
    const [he, hx] = await Promise.all([emb.status(), ext.status()]);
    await stopChild(emb.child);
    const watch = watchRss(ext.pid);
    const heavy = closedLoop(mosquitto.url, `edgeloop/mem-ext-${label}/infer/${MODEL}`);
    const runs = [];
    try {
      for (let i = 0; i < o.rounds; i++) runs.push(await load(heavy, [ext.pid, mosquitto.pid]));
    } finally {
      watch.stop();
    }
    return {
      label,
      embedded: { online: online[0], settled: se, heapUsed: he.memory.heapUsed },
      external: { online: online[1], settled: sx, heapUsed: hx.memory.heapUsed },
      peakKb: watch.peakKb(),
      rps: median(runs.map((r) => rate(r.result))),
      failed: runs.reduce((n, r) => n + r.result.failed + r.result.lost, 0),
    };
  } finally {
    for (const c of children) await stopChild(c.child, 5000);
  }
}

export async function runMemory(o: MemoryOptions = defaultMemoryOptions): Promise<BenchResult> {
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-memory-'));
  const one = path.join(tmp, 'one-onnx');
  cpSync(path.join(root, 'models', MODEL), path.join(one, MODEL), { recursive: true });
  const demo = path.join(root, 'models');
  const mosquitto = await startMosquitto();
  try {
    const stagesDemo = await stages('demo', demo, o, tmp);
    const stagesOne = await stages('one', one, o, tmp);
    const broker = { url: mosquitto.url, pid: mosquitto.process.pid! };
    const d = await daemonMemory('demo', demo, o, tmp, broker);
    const s = await daemonMemory('one', one, o, tmp, broker);
    const mb = (kb: number) => fmt(kb / 1024, 1);
    const idle = (x: DaemonMemory['embedded']) => [mb(x.online), `${mb(x.settled.rssKb)} (${mb(x.settled.anonKb)} / ${mb(x.settled.rssKb - x.settled.anonKb)})`, fmt(x.heapUsed / 2 ** 20, 1)];
    const row = (x: DaemonMemory, label: string) => [
      [`${label}, embedded broker (\`npm start\`)`, ...idle(x.embedded), '', ''],
      [`${label}, Mosquitto`, ...idle(x.external), mb(x.peakKb), `${fmt(x.rps)} (${x.failed} failed or lost)`],
    ];
    const flags = [...deployedNodeFlags(), ...(o.nodeArgs ?? [])].join(' ') || '(none)';
    const kb = (x: number) => fmt(x / 1024, 1);
    const kindsTable = table(
      ['kind', 'demo bundles, MB', `one ONNX bundle (${MODEL}), MB`],
      [...KIND_LABELS.map(([k, l]) => [l, kb(stagesDemo.idle[k]), kb(stagesOne.idle[k])]), ['**VmRSS**', kb(stagesDemo.idle.rssKb), kb(stagesOne.idle.rssKb)]],
    );
    const md = [
      `### Memory: the daemon as run (\`node ${flags} bin/edgeloop.js serve\`)`,
      '',
      table(
        ['models, broker', 'RSS 1 s after online, MB', `RSS after ${o.settleMs / 1000} s idle, MB (anon / file-backed)`, 'V8 heap used, MB', `peak RSS under load, MB (${o.rounds} × 4 s)`, 'replies/s under load (median)'],
        [...row(d, 'demo bundles (models/, 8)'), ...row(s, `one ONNX bundle (${MODEL})`)],
      ),
      '',
      `Load: 8 clients × 4 outstanding \`${MODEL}\` requests (MQTT 5, QoS 0) through Mosquitto, as in the serving bench; peak VmRSS sampled every 100 ms. File-backed pages are code (node, libonnxruntime, other libraries): clean, shared, and given back under memory pressure, but counted in RSS.`,
      '',
      `### Memory: what the idle daemon is made of (stage child, idle after start; medians of ${o.runs} runs; from /proc/self/smaps and V8's heap statistics)`,
      '',
      kindsTable,
      '',
      `### Memory: stages of a start, demo bundles (median of ${o.runs} runs, \`scripts/bench/memory-stages.mjs\`)`,
      '',
      stagesDemo.stages,
      '',
      `### Memory: stages of a start, one ONNX bundle (${MODEL})`,
      '',
      stagesOne.stages,
    ].join('\n');
    const targets: TargetRow[] = [
      ['memory: idle RSS, demo bundles, embedded broker (1 s after online; settled)', `${mb(d.embedded.online)} MB; ${mb(d.embedded.settled.rssKb)} MB`, '≤ 90 MB', met(d.embedded.online <= 90 * 1024)],
      ['memory: peak RSS under load, demo bundles (Mosquitto)', `${mb(d.peakKb)} MB`, '≤ 120 MB', met(d.peakKb <= 120 * 1024)],
    ];
    return { md, targets };
  } finally {
    await mosquitto.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, settle: { type: 'string' }, rounds: { type: 'string' }, 'daemon-node-args': { type: 'string' } } });
  const d = defaultMemoryOptions;
  const opts: MemoryOptions = {
    runs: Number(values.runs ?? d.runs),
    settleMs: values.settle ? Number(values.settle) * 1000 : d.settleMs,
    rounds: Number(values.rounds ?? d.rounds),
    nodeArgs: values['daemon-node-args']?.split(' ').filter(Boolean),
  };
  runMemory(opts).then(
    (r) => console.log(standalone(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
