/**
 * Investigation, not part of `npm run bench`: the daemon's request path without MQTT, two builds
 * side by side in one process (the real RequestHandler and ServedModel of each, int8 digits,
 * drift and feedback off), alternating rounds, CPU time per request. For before/after figures:
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && ln -s "$PWD/node_modules" . && npm run build)
 *   npm run build
 *   node scripts/bench/request-path-ab.mjs /tmp/before/dist dist [burst]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const [distA, distB, burstArg] = process.argv.slice(2);
if (!distA || !distB) {
  console.error('usage: node scripts/bench/request-path-ab.mjs DIST_A DIST_B [burst]');
  process.exit(64);
}
const N = 20_000;
const BURST = Number(burstArg ?? 10);
const rows = JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')).rows;
const payloads = rows.map((r) => Buffer.from(JSON.stringify({ inputs: r })));

async function setup(dist) {
  const url = (p) => pathToFileURL(path.resolve(dist, p)).href;
  const { loadServedModel } = await import(url('daemon/load-models.js'));
  const { RequestHandler, topicsFor } = await import(url('transport/index.js'));
  const engineOpts = { onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 }, tfjs: { backends: ['cpu'] } };
  const model = await loadServedModel(path.join(root, 'models/digits'), engineOpts, { maxBatch: 32, maxDelayMs: 2, queueLimit: 1024 });
  const topics = topicsFor('bench');
  const limits = { maxPayloadBytes: 1 << 20, maxRowsPerRequest: 1024 };
  const handler = new RequestHandler({ topics, models: () => model, publish: async () => undefined, limits, timeoutMs: 5000 });
  return { handler, topic: topics.infer('digits') };
}

async function run(side) {
  const correlationData = Buffer.from('abcd');
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i += BURST) {
    for (let j = 0; j < BURST; j++) side.handler.handle({ topic: side.topic, payload: payloads[(i + j) % payloads.length], qos: 0, meta: {}, responseTopic: 'r', correlationData });
    while (side.handler.pending > 0) await new Promise((r) => setImmediate(r));
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}

const sides = [await setup(distA), await setup(distB)];
const res = [[], []];
for (let round = 0; round < 8; round++) for (const k of round % 2 ? [1, 0] : [0, 1]) res[k].push(await run(sides[k]));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// The first two rounds warm the JIT up.
const [a, b] = res.map((r) => r.slice(2));
console.log(`bursts of ${BURST}, µs CPU per request (median of 6 rounds after 2 of warm-up):`);
console.log(`  A ${distA}: ${median(a).toFixed(2)}   B ${distB}: ${median(b).toFixed(2)}   B/A ${median(b.map((x, i) => x / a[i])).toFixed(3)}`);
process.exit(0);
