import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** CommonJS packages in the module cache after importing these dist/ modules in a fresh node. */
function packagesLoaded(modules: string[]): string[] {
  const script = `
    import { createRequire } from 'node:module';
    import { pathToFileURL } from 'node:url';
    for (const m of JSON.parse(process.argv[1])) await import(pathToFileURL(m).href);
    const names = Object.keys(createRequire(import.meta.url).cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]);
    console.log(JSON.stringify([...new Set(names.filter(Boolean))]));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(modules)], { encoding: 'utf8' }));
}

describe('start-up module graph (memory and start-up time: BENCHMARKS.md "Memory and start-up")', () => {
  it('the daemon and the serve command load no engine, no metrics and no toolchain before they are needed', () => {
    const loaded = packagesLoaded(['dist/cli/serve-command.js', 'dist/daemon/daemon.js']);
    expect(loaded).toContain('better-sqlite3'); // the state database: CommonJS, needed at once
    // mqtt.js is bundled into dist/util/mqtt.js by the build (scripts/build.mjs): none of its modules load.
    expect(loaded).not.toContain('mqtt');
    for (const lazy of ['onnxruntime-node', '@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', 'prom-client', 'onnx-proto', 'protobufjs']) {
      expect(loaded).not.toContain(lazy);
    }
  });

  it('the tfjs engine loads tfjs as CommonJS, the same instance the toolchain imports', async () => {
    const loaded = packagesLoaded(['dist/engine/tfjs-engine.js']);
    expect(loaded).toEqual(expect.arrayContaining(['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']));
    const { tf } = await import('../src/engine/tfjs-modules.js');
    const imported = await import('@tensorflow/tfjs-core');
    expect(tf.engine()).toBe(imported.engine());
  });
});
