/**
 * Investigation, not part of `npm run bench`: how much of the serving cost is the micro-
 * batcher's wait. Runs an in-process daemon under the serving bench's load with
 *   - the batcher as shipped (maxDelayMs 2),
 *   - maxDelayMs 0 (config only: still a setTimeout, so ~1 ms),
 *   - a patched schedule() that, when no batch runs, flushes on setImmediate instead of a
 *     timer (takes what the current I/O phase delivered, so batches still form under load).
 * The patch replaces a private method at run time, so it must follow src/engine/micro-batcher.ts.
 *
 *   npx tsx scripts/bench/batcher-experiment.ts [--seconds 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { resolveConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { MicroBatcher } from '../../src/engine/micro-batcher.js';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { fmt, isMain, percentiles, table } from './report.js';
import { load, startEcho, stopChild } from './serving.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');

/** The suggested change to MicroBatcher.schedule(), applied to the prototype. */
function patchFlushOnImmediate(): () => void {
  const proto = MicroBatcher.prototype as any;
  const original = proto.schedule;
  proto.schedule = function (this: any) {
    if (this.running) return; // the end of the running batch picks the queue up
    if (this.queuedRows >= this.opts.maxBatch || this.closed) {
      if (this.timer) clearImmediate(this.timer);
      this.timer = undefined;
      void this.flush();
    } else if (!this.timer) {
      this.timer = setImmediate(() => {
        this.timer = undefined;
        void this.flush();
      });
    }
  };
  return () => (proto.schedule = original);
}

const samplesFile = path.join(root, 'test/fixtures/digits-sample.json');

/** Heavy then light load against one topic; `pid` is the responder whose CPU is reported. */
async function measure(label: string, url: string, topic: string, pid: number, measureMs: number, onPhase?: (p: 'measure' | 'drain') => void) {
  const opts = { url, topic, clients: 8, window: 4, warmupMs: 1500, measureMs, maxMeasured: 2_000_000, lostAfterMs: 6000, samplesFile };
  const heavy = await load(opts, [pid], onPhase);
  const light = await load({ ...opts, clients: 1, window: 1, warmupMs: 500, maxMeasured: 1000 }, [pid]);
  const [p50, p99] = percentiles(heavy.result.latencies, [50, 99]);
  const [l50] = percentiles(light.result.latencies, [50]);
  const rps = heavy.result.measured / (heavy.result.measuredMs / 1000);
  return { label, rps, p50, p99, cpu: heavy.cpu[0], l50, bad: heavy.result.failed + heavy.result.lost, reply: heavy.result.sampleReply, batch: NaN };
}

async function variant(label: string, url: string, maxDelayMs: number, measureMs: number, patch?: () => () => void) {
  const unpatch = patch?.();
  const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-exp-'));
  const deviceId = `exp-${Math.random().toString(36).slice(2, 8)}`;
  const daemon = new Daemon({
    config: resolveConfig({ deviceId, home, modelsDir: path.join(root, 'models'), logLevel: 'warn', broker: { url }, serving: { maxDelayMs } }, {}, {}),
    log: pino({ level: 'warn' }),
  });
  try {
    await daemon.start();
    const stats = daemon.servedModels().get('digits')!.stats;
    let at = { ...stats };
    let batch = NaN;
    const m = await measure(label, url, daemon.topics.infer('digits'), process.pid, measureMs, (phase) => {
      if (phase === 'measure') at = { ...stats };
      else batch = (stats.rows - at.rows) / (stats.batches - at.batches);
    });
    return { ...m, batch };
  } finally {
    await daemon.stop('experiment done');
    unpatch?.();
    rmSync(home, { recursive: true, force: true });
  }
}

export async function runBatcherExperiment(measureMs = 5000): Promise<string> {
  const mosquitto = await startMosquitto();
  try {
    const runs = [
      await variant('as shipped (maxDelayMs 2)', mosquitto.url, 2, measureMs),
      await variant('maxDelayMs 0 (config)', mosquitto.url, 0, measureMs),
      await variant('flush on setImmediate when idle (patch)', mosquitto.url, 2, measureMs, patchFlushOnImmediate),
    ];
    // The ceiling in the same run, replaying a real reply.
    const echo = await startEcho(mosquitto.url, 'exp-echo', runs[0].reply);
    const ceiling = await measure('echo responder (ceiling)', mosquitto.url, 'edgeloop/exp-echo/infer/digits', echo.pid!, measureMs).finally(() => stopChild(echo));
    const rows = [...runs, ceiling].map((r) => [
      r.label,
      fmt(r.rps),
      `${fmt((100 * r.rps) / ceiling.rps)}%`,
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.batch, 1),
      `${fmt(r.cpu * 100)}%`,
      fmt(r.l50, 3),
      fmt(r.l50 - ceiling.l50, 3),
      fmt(r.bad),
    ]);
    return [
      `### Micro-batcher variants, in-process daemon, 8 clients × 4 outstanding, ${measureMs / 1000} s each`,
      '',
      table(['batcher', 'replies/s', 'of echo', 'p50 ms', 'p99 ms', 'rows per engine call', 'responder CPU', 'light-load p50 ms', 'added vs echo ms', 'failed + lost'], rows),
    ].join('\n');
  } finally {
    await mosquitto.stop();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' } } });
  runBatcherExperiment(values.seconds ? Number(values.seconds) * 1000 : undefined).then(
    (md) => {
      console.log(md);
      process.exit(0); // tfjs/onnx handles of the stopped daemons may linger
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
