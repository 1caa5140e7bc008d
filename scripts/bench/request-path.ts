/**
 * Investigation, not part of `npm run bench`: the daemon's own per-request work without MQTT.
 * The real RequestHandler and ServedModel (int8 digits) with a publish stub, fed bursts of
 * requests; plus the decode step alone. Shows what a request costs inside the daemon, apart
 * from MQTT and drift monitoring (the adaptive batcher runs each burst at the next turn of the
 * event loop).
 *
 *   npx tsx scripts/bench/request-path.ts
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadServedModel } from '../../src/daemon/load-models.js';
import { RequestHandler, decodeRequest, topicsFor } from '../../src/transport/index.js';
import { fmt, isMain, table } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const N = 20_000;

export async function runRequestPath(): Promise<string> {
  const rows = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/digits-sample.json'), 'utf8')) as { rows: number[][] }).rows;
  const payloads = rows.map((r) => Buffer.from(JSON.stringify({ inputs: r })));
  const engineOpts = { onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 }, tfjs: { backends: ['cpu'] } };
  const model = await loadServedModel(path.join(root, 'models/digits'), engineOpts, { maxBatch: 32, maxDelayMs: 2, queueLimit: 1024 });
  const topics = topicsFor('bench');
  const limits = { maxPayloadBytes: 1 << 20, maxRowsPerRequest: 1024 };
  const handler = new RequestHandler({ topics, models: () => model, publish: async () => undefined, limits, timeoutMs: 5000 });
  const out: string[][] = [];

  let t = performance.now();
  for (let i = 0; i < N; i++) decodeRequest(payloads[i % payloads.length], {}, model.inputs, limits);
  out.push(['decodeRequest (JSON, 1 row)', fmt(((performance.now() - t) * 1000) / N, 1)]);

  for (const burst of [1, 10, 32]) {
    t = performance.now();
    const correlationData = Buffer.from('abcd');
    for (let i = 0; i < N; i += burst) {
      for (let j = 0; j < burst; j++) handler.handle({ topic: topics.infer('digits'), payload: payloads[(i + j) % payloads.length], qos: 0, meta: {}, responseTopic: 'r', correlationData });
      const until = Date.now() + 10_000; // every request settles by its 5 s deadline anyway
      while (handler.pending > 0 && Date.now() < until) await new Promise((r) => setImmediate(r));
    }
    out.push([`handle → reply, bursts of ${burst}`, fmt(((performance.now() - t) * 1000) / N, 1)]);
  }
  await model.drain();
  await model.dispose();
  return [`### Daemon request path without MQTT (int8 digits, maxBatch 32, maxDelayMs 2), ${fmt(N)} requests`, '', table(['step', 'µs per request'], out)].join('\n');
}

if (isMain(import.meta.url)) {
  runRequestPath().then(
    (md) => {
      console.log(md);
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
