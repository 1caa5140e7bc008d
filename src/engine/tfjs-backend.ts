import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Wasm from '@tensorflow/tfjs-backend-wasm';
import type { Logger } from 'pino';
import { EdgeloopError } from '../errors.js';
import { requireTfjs, tf } from './tfjs-modules.js';

const require = createRequire(import.meta.url);

/** How to make one tfjs backend available; throws with a reason when it cannot. */
interface BackendCandidate {
  name: 'tensorflow' | 'wasm' | 'cpu';
  init(): Promise<void>;
}

const CANDIDATES: Record<BackendCandidate['name'], BackendCandidate> = {
  // Optional native binding; it cannot install everywhere, so it is detected, never required.
  tensorflow: {
    name: 'tensorflow',
    async init() {
      requireTfjs('@tensorflow/tfjs-node');
      if (!tf.findBackendFactory('tensorflow')) throw new Error('@tensorflow/tfjs-node loaded but registered no backend with this tfjs-core');
    },
  },
  wasm: {
    name: 'wasm',
    async init() {
      const wasm = requireTfjs<typeof Wasm>('@tensorflow/tfjs-backend-wasm');
      // setWasmPaths throws once the wasm backend has started (e.g. the toolchain started it).
      if (tf.findBackend('wasm')) return;
      const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
      wasm.setWasmPaths(dir + path.sep);
    },
  },
  cpu: {
    name: 'cpu',
    async init() {
      requireTfjs('@tensorflow/tfjs-backend-cpu');
    },
  },
};

export interface BackendChoice {
  backend: string;
  /** Why each backend before the chosen one was skipped. */
  skipped: string[];
}

let chosen: Promise<BackendChoice> | undefined;

/**
 * Pick the tfjs backend once per process, trying `priority` in order (tensorflow > wasm > cpu
 * by default), and log which one won and why the others were skipped. tfjs has one global
 * backend, so the first call decides for every tfjs model in the process.
 */
export function selectTfjsBackend(priority: readonly string[], log?: Logger): Promise<BackendChoice> {
  chosen ??= (async () => {
    const skipped: string[] = [];
    for (const name of priority) {
      const candidate = CANDIDATES[name as BackendCandidate['name']];
      if (!candidate) {
        skipped.push(`${name}: unknown backend`);
        continue;
      }
      try {
        await candidate.init();
        if (!(await tf.setBackend(name))) throw new Error('setBackend returned false');
        await tf.ready();
        const choice = { backend: tf.getBackend(), skipped };
        log?.info(choice, 'tfjs backend selected');
        return choice;
      } catch (err) {
        skipped.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    throw new EdgeloopError('EDGELOOP_ENGINE_UNAVAILABLE', `tfjs: no backend could start (${skipped.join('; ')})`);
  })();
  chosen.catch(() => (chosen = undefined));
  return chosen;
}
