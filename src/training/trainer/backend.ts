import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { EdgeloopError } from '../../errors.js';
import { installFastCpuConvGradient } from './cpu-conv-gradient.js';

const require = createRequire(import.meta.url);

export const TRAINING_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type TrainingBackend = (typeof TRAINING_BACKENDS)[number];

/** Which backend trains, and why the ones before it in priority order were passed over. */
export interface TrainingBackendChoice {
  backend: TrainingBackend;
  skipped: string[];
  /** Kernels one training step of the model runs (forward, gradients, optimizer). */
  kernels: string[];
}

const INIT: Record<TrainingBackend, () => Promise<void>> = {
  // Optional native binding: detected, never required.
  async tensorflow() {
    const name = '@tensorflow/tfjs-node';
    try {
      await import(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ? new Error(`${name} is not installed`) : err;
    }
    if (!tf.findBackendFactory('tensorflow')) throw new Error('@tensorflow/tfjs-node loaded but registered no backend with this tfjs-core');
  },
  async wasm() {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    try {
      wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep);
    } catch (err) {
      // The engine (src/engine) may have started wasm in this process already: use it as it is.
      if (!/already initialized/.test((err as Error).message)) throw err;
    }
  },
  async cpu() {
    installFastCpuConvGradient();
  },
};

/** The backend tfjs currently runs on, or undefined when none has been initialised yet. */
export function currentBackend(): string | undefined {
  return (tf.engine() as unknown as { backendName: string | null }).backendName ?? undefined;
}

/**
 * Kernels that one training step runs: `step` (a train-on-batch of a throwaway copy of the
 * model) is profiled on the cpu backend, which has every kernel.
 */
export async function kernelsOfTrainingStep(step: () => Promise<void>): Promise<string[]> {
  await INIT.cpu();
  if (!(await tf.setBackend('cpu'))) throw new EdgeloopError('EDGELOOP_ENGINE_UNAVAILABLE', 'tfjs: the cpu backend cannot start');
  const info = await tf.profile(step);
  // Names with '__op' are op scopes, not kernels.
  return [...new Set(info.kernelNames)].filter((k) => !k.includes('__op') && tf.getKernel(k, 'cpu')).sort();
}

/**
 * Pick the training backend: in priority order (tensorflow > wasm > cpu, or only `wanted`),
 * the first that starts and has every kernel in `kernels` registered. wasm, for one, has no
 * Conv2DBackpropFilter, so CNNs train on cpu unless tfjs-node is installed. Leaves tfjs set to
 * the chosen backend. Throws EDGELOOP_ENGINE_UNAVAILABLE listing every reason when none fits.
 */
export async function selectTrainingBackend(kernels: readonly string[], wanted: TrainingBackend | 'auto' = 'auto'): Promise<TrainingBackendChoice> {
  const candidates = wanted === 'auto' ? TRAINING_BACKENDS : [wanted];
  const skipped: string[] = [];
  for (const name of candidates) {
    try {
      await INIT[name]();
      const missing = kernels.filter((k) => !tf.getKernel(k, name));
      if (missing.length) {
        skipped.push(`${name}: no ${missing.join(', ')} kernel${missing.length > 1 ? 's' : ''} for this model's gradients`);
        continue;
      }
      if (!(await tf.setBackend(name))) throw new Error('setBackend returned false');
      await tf.ready();
      return { backend: name, skipped, kernels: [...kernels] };
    } catch (err) {
      skipped.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new EdgeloopError('EDGELOOP_ENGINE_UNAVAILABLE', `tfjs: no backend can train this model (${skipped.join('; ')})`);
}
