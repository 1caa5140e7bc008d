/**
 * Fine-tune trainer process: the child that {@link fineTune} forks, at a lower CPU priority,
 * with a heap limit, so a crash, a leak or a long run never touches the daemon's serving.
 *
 *   parent (daemon, CLI)                               trainer process (this file)
 *   ────────────────────                               ───────────────────────────
 *   fork(--max-old-space-size, nice)   ──────────▶     waits for one job
 *   { type: 'start', job }             ──────────▶     read bundle, mix data, fit, export,
 *                                                      verify with the real engine, write,
 *                                                      score the gate (when the job has one),
 *                                                      check the export against float32
 *                                      ◀──────────     { type: 'progress', progress }  (any number)
 *                                      ◀──────────     { type: 'done', dir, version, summary }
 *                                                      or { type: 'error', code, message }
 *   SIGKILL on cancel / time budget    ──────────▶     dies; the parent removes the work folder
 *   (parent gone: IPC 'disconnect')                  exits at once
 *
 * The candidate folder is written atomically before 'done', so a run killed at any point
 * leaves no bundle behind; the process exits after answering.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asEdgeloopError } from '../errors.js';
import { assertFaithfulExport, buildCandidate } from './candidate.js';
import { compareCandidate, type CompareResult } from './compare.js';
import type { FineTuneProgress, FromTrainer, ToTrainer } from './types.js';

if (!process.send) throw new Error('finetune-worker must be started with child_process.fork');
tf.env().set('PROD', true);

// The parent died (kill -9, a crash): nobody will install what this run builds, and its work
// folder is removed when the daemon starts again, so stop at once rather than write into it.
process.once('disconnect', () => process.exit(1));

const post = (msg: FromTrainer): Promise<void> => new Promise((resolve) => process.send!(msg, undefined, {}, () => resolve()));

process.once('message', (msg: ToTrainer) => {
  if (msg.type !== 'start') return;
  const progress = (p: FineTuneProgress) => void post({ type: 'progress', progress: p });
  buildCandidate(msg.job, { progress })
    .then(async (r) => {
      // The gate here too: loading both versions and scoring them would stall the daemon's event loop.
      const g = msg.job.gate;
      let gate: CompareResult | undefined;
      if (g) {
        progress({ stage: 'scoring' });
        gate = await compareCandidate(msg.job.bundleDir, r.dir, g.holdout, g.anchor, { minGain: g.minGain, maxAnchorDrop: g.maxAnchorDrop });
      }
      if (!gate || gate.promote) assertFaithfulExport(r.summary);
      return post({ type: 'done', dir: r.dir, version: r.version, summary: r.summary, gate });
    })
    .catch((err: unknown) => {
      const e = asEdgeloopError(err);
      return post({ type: 'error', code: e.code, message: e.message });
    })
    .finally(() => process.exit(0));
});
