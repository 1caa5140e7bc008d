// Memory stages of a daemon start, for scripts/bench/memory.ts. Plain JavaScript run by plain
// node (with the deployed flags) on dist/: under tsx the loader's own thread and modules would be
// counted too. It imports what `edgeloop serve` imports, in the same order, then starts the real
// Daemon; a log stream (the daemon's own pino logger, given a destination) marks each bundle
// loaded. Nothing in src/ knows about it.
//
//   node scripts/bench/memory-stages.mjs '{"home":"...","modelsDir":"models","port":1883}'
//
// Prints one JSON line per stage on stdout: {stage, rssKb, heapUsed, ...kinds (kB)}.
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

const opts = JSON.parse(process.argv[2]);

/**
 * Resident kB by kind, from /proc/self/smaps: code files (node, libonnxruntime, the rest), the V8
 * heap (V8's own count), the main malloc arena, the arenas glibc gives other threads (64 MB
 * aligned), other anonymous memory (thread stacks, wasm memories: tfjs reserves 16 MB, touches little).
 */
function kinds() {
  const regions = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) regions.push({ start: parseInt(head[1], 16), name: head[3], rssKb: 0 });
    else if (line.startsWith('Rss:')) regions[regions.length - 1].rssKb = Number(line.split(/\s+/)[1]);
  }
  const ARENA = 64 * 2 ** 20;
  const arenas = regions.filter((r) => !r.name && r.start % ARENA === 0).map((r) => r.start);
  const k = { rssKb: 0, node: 0, onnxruntime: 0, otherFiles: 0, mallocMain: 0, threadArenas: 0, anon: 0 };
  for (const r of regions) {
    k.rssKb += r.rssKb;
    if (r.name.endsWith('/node')) k.node += r.rssKb;
    else if (/onnxruntime/.test(r.name) && r.name.startsWith('/')) k.onnxruntime += r.rssKb;
    else if (r.name.startsWith('/')) k.otherFiles += r.rssKb;
    else if (r.name === '[heap]') k.mallocMain += r.rssKb;
    else if (!r.name && arenas.some((a) => r.start >= a && r.start < a + ARENA)) k.threadArenas += r.rssKb;
    else k.anon += r.rssKb;
  }
  // The V8 heap is in the remaining anonymous mappings.
  const v8Heap = Math.round(v8.getHeapStatistics().total_physical_size / 1024);
  return { ...k, v8Heap, anon: Math.max(0, k.anon - v8Heap) };
}

function sample(stage) {
  process.stdout.write(JSON.stringify({ stage, heapUsed: process.memoryUsage().heapUsed, ...kinds() }) + '\n');
}

const settle = () => new Promise((r) => setTimeout(r, 100));
const dist = (p) => new URL(`../../dist/${p}`, import.meta.url).href;

sample('node');
// bin/edgeloop.js -> cli/main.js -> command-groups (commander) -> serve-command (config, logger).
const { programFor } = await import(dist('cli/command-groups.js'));
await programFor(['serve']);
await settle();
sample('CLI: commander, config schema (zod), pino');
const { Daemon } = await import(dist('daemon/daemon.js'));
await settle();
sample('daemon module graph (mqtt, better-sqlite3, drift, feedback, ...)');
if (!opts.broker) {
  await import(dist('transport/embedded-broker.js'));
  await settle();
  sample('embedded broker module (aedes)');
}
const { resolveConfig } = await import(dist('config/index.js'));
const { createLogger } = await import(dist('daemon/logger.js'));
const config = resolveConfig(opts.config ?? {}, { home: opts.home, modelsDir: opts.modelsDir, deviceId: 'bench-memory', logLevel: 'info', broker: { url: opts.broker, port: opts.port } });
// The daemon's own logger with a destination that samples at the lines that end a stage: a
// bundle's "model loaded" comes after its engine, drift profile and warm-up.
const STAGES = {
  'shipped models imported': () => 'registry: shipped bundles imported',
  'tfjs backend selected': (r) => `tfjs runtime: tfjs-core, tfjs-layers, ${r.backend} backend`,
  'model loaded': (r) => `bundle loaded: ${r.model} (${r.runtime} ${r.backend})`,
};
const destination = {
  write(line) {
    const rec = JSON.parse(line);
    if (STAGES[rec.msg]) sample(STAGES[rec.msg](rec));
    else if (rec.level >= 50) process.stderr.write(line);
  },
};
const daemon = new Daemon({ config, log: createLogger('info', { destination }) });
// Imported here, not inside the first bundle's load, so that its cost is a row of its own.
await import(dist('engine/onnx-engine.js'));
sample('onnxruntime-node imported');
await daemon.start();
sample('serving (broker connected, admin API up)');
await new Promise((r) => setTimeout(r, opts.idleMs ?? 3000));
sample('idle after start');
await daemon.stop('bench');
process.exit(0);
