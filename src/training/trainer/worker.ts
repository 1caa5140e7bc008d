/**
 * Trainer worker thread: runs {@link fitModel} off the parent's event loop. See protocol.ts
 * for the messages. One job per worker; the worker exits after answering.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { asEdgeloopError } from '../../errors.js';
import { fitModel, modelToArtifacts } from './fit.js';
import type { FromTrainer, SerializedModel, ToTrainer } from './protocol.js';

if (!parentPort) throw new Error('worker.ts must run in a worker thread');
const port = parentPort;
tf.env().set('PROD', true);
let stopRequested = false;
const post = (msg: FromTrainer, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

port.on('message', (msg: ToTrainer) => {
  if (msg.type === 'stop') {
    stopRequested = true;
    return;
  }
  fitModel(msg.job, { onEvent: (event) => post({ type: 'event', event }), shouldStop: () => stopRequested })
    .then(async ({ built, summary }) => {
      const artifacts = await modelToArtifacts(built.model);
      built.model.dispose();
      const model = artifacts as unknown as SerializedModel;
      post({ type: 'done', summary, model }, [model.weightData]);
    })
    .catch((err: unknown) => {
      const e = asEdgeloopError(err);
      post({ type: 'error', code: e.code, message: e.message });
    })
    .finally(() => port.close());
});
