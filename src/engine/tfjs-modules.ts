import { createRequire } from 'node:module';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';

const require = createRequire(import.meta.url);

/**
 * tfjs-core and tfjs-layers for serving, loaded with require() rather than import. Each is one
 * CommonJS bundle (1.2 and 1.5 MB of source): through Node's ESM loader it is compiled once more
 * to detect its module format and scanned for its export names, which leaves resident memory
 * behind (compiler memory of V8's worker threads: 7 MB in the daemon, 25 MB in a fresh process)
 * and takes 250 ms longer (BENCHMARKS.md, "Memory and start-up"). import and require share one
 * module instance, so the toolchain's `import * as tf` sees the same engine and backends.
 */
export const tf: typeof TfCore = require('@tensorflow/tfjs-core');
export const tfl: typeof TfLayers = require('@tensorflow/tfjs-layers');

/** A tfjs package loaded the same way (backends: they register themselves with tf). */
export function requireTfjs<T = unknown>(name: string): T {
  return require(name) as T;
}
