import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { EdgeloopError, ERROR_CATALOGUE, type ErrorCode } from '../../errors.js';
import { currentBackend } from './backend.js';
import { fitModel } from './fit.js';
import type { FromTrainer, ToTrainer } from './protocol.js';
import type { FitJob, FitSummary, TrainerEvent } from './types.js';

export interface RunFitOptions {
  /** 'worker' trains in a worker thread (its own tfjs backend); 'in-process' on this thread. */
  mode?: 'in-process' | 'worker';
  onEvent?: (event: TrainerEvent) => void;
  /** Aborting ends training after the current epoch; the best weights so far are kept. */
  signal?: AbortSignal;
}

/** A fitted model, loaded in this thread, and how the fit went. */
export interface FitOutcome {
  model: tfl.LayersModel;
  summary: FitSummary;
}

/**
 * Train a job in-process or in a worker thread. In-process, the tfjs backend that was active
 * before (e.g. the one the engines chose) is restored afterwards; in a worker, the parent's
 * backend is never touched and the model comes back as artifacts, loaded here.
 */
export async function runFit(job: FitJob, opts: RunFitOptions = {}): Promise<FitOutcome> {
  if (opts.mode === 'worker') return runInWorker(job, opts);
  const previous = currentBackend();
  try {
    const { built, summary } = await fitModel(job, { onEvent: opts.onEvent, shouldStop: () => opts.signal?.aborted ?? false });
    return { model: built.model, summary };
  } finally {
    if (previous && previous !== currentBackend()) await tf.setBackend(previous);
  }
}

/**
 * The worker entry. Compiled (dist/) it is worker.js; from the TypeScript sources (tsx,
 * vitest) the worker first registers tsx's loader in its own thread, then imports worker.ts.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url));
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true });
}

function runInWorker(job: FitJob, opts: RunFitOptions): Promise<FitOutcome> {
  const worker = startWorker();
  const send = (msg: ToTrainer): void => worker.postMessage(msg);
  const onAbort = (): void => send({ type: 'stop' });
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<FitOutcome>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    worker.on('message', (msg: FromTrainer) => {
      if (msg.type === 'event') opts.onEvent?.(msg.event);
      else if (msg.type === 'error') {
        const code = (msg.code in ERROR_CATALOGUE ? msg.code : 'EDGELOOP_TRAINING_FAILED') as ErrorCode;
        settle(() => reject(new EdgeloopError(code, msg.message)));
      } else {
        tfl
          .loadLayersModel(tf.io.fromMemory(msg.model as unknown as tf.io.ModelArtifacts))
          .then((model) => settle(() => resolve({ model, summary: msg.summary })), (err: unknown) => settle(() => reject(err)));
      }
    });
    worker.on('error', (err) => settle(() => reject(new EdgeloopError('EDGELOOP_TRAINING_FAILED', `trainer worker failed: ${err.message}`, { cause: err }))));
    worker.on('exit', (code) => settle(() => reject(new EdgeloopError('EDGELOOP_TRAINING_FAILED', `trainer worker exited (code ${code}) before answering`))));
    send({ type: 'start', job });
  });
}
