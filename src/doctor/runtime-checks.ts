import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { detectHardware, profileFor } from '../config/index.js';
import type { Check } from './types.js';

const require = createRequire(import.meta.url);

/** Node 20 or later (the engines field, and better-sqlite3 12's ABI). */
export const nodeVersion: Check = {
  id: 'node',
  title: 'Node.js version',
  async run() {
    const major = Number(process.versions.node.split('.')[0]);
    return major >= 20
      ? { status: 'ok', detail: `v${process.versions.node} (${process.platform}/${process.arch})`, data: { version: process.versions.node } }
      : { status: 'fail', detail: `v${process.versions.node} is too old`, hint: 'install Node.js 20 or later', data: { version: process.versions.node } };
  },
};

/** The native modules load and work (a missing prebuild or a wrong ABI shows here, not at first request). */
export const nativeModules: Check = {
  id: 'native-modules',
  title: 'native modules load',
  async run() {
    const failures: string[] = [];
    const loaded: string[] = [];
    try {
      const Database = require('better-sqlite3');
      const db = new Database(':memory:');
      db.prepare('SELECT 1').get();
      db.close();
      loaded.push(`better-sqlite3 ${require('better-sqlite3/package.json').version}`);
    } catch (err) {
      failures.push(`better-sqlite3: ${(err as Error).message.split('\n')[0]}`);
    }
    try {
      await import('onnxruntime-node');
      loaded.push(`onnxruntime-node ${require('onnxruntime-node/package.json').version}`);
    } catch (err) {
      failures.push(`onnxruntime-node: ${(err as Error).message.split('\n')[0]}`);
    }
    return failures.length
      ? { status: 'fail', detail: failures.join('; '), hint: 'reinstall with `npm rebuild` on this machine (same Node version as the daemon)', data: { loaded, failures } }
      : { status: 'ok', detail: loaded.join(', '), data: { loaded } };
  },
};

/** Said plainly, because the npm package suggests otherwise on x64. */
export const JETSON_GPU_NOTE =
  'the npm onnxruntime-node build has no CUDA or TensorRT on arm64 (Jetson): build onnxruntime from source on the Jetson ' +
  '(./build.sh --use_cuda --use_tensorrt --build_nodejs with JetPack\'s CUDA, cuDNN and TensorRT) and install that Node binding; ' +
  "NVIDIA's JetPack onnxruntime-gpu wheels are for Python only. Until then serving falls back to cpu.";

/** onnxruntime's version and the execution providers this install really has. */
export const onnxRuntime: Check = {
  id: 'onnxruntime',
  title: 'onnxruntime execution providers',
  async run({ config }) {
    const ort = await import('onnxruntime-node');
    const version = ort.env.versions?.node ?? require('onnxruntime-node/package.json').version;
    const binDir = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
    // listSupportedBackends says which providers this build knows; CUDA/TensorRT are "not bundled":
    // they work only when their provider libraries were installed next to the binding.
    const providers = ort.listSupportedBackends().map((b) => {
      const lib = path.join(binDir, `libonnxruntime_providers_${b.name}.so`);
      return { name: b.name, available: b.bundled || existsSync(lib) };
    });
    const available = providers.filter((p) => p.available).map((p) => p.name);
    const missing = config.onnx.executionProviders.filter((ep) => !available.includes(ep));
    const detail = `v${version}; available: ${available.join(', ')}${missing.length ? `; configured but missing: ${missing.join(', ')} (falls back to cpu)` : ''}`;
    const gpuWanted = missing.some((ep) => ep === 'cuda' || ep === 'tensorrt');
    const onJetson = detectHardware().board === 'jetson' || process.arch === 'arm64';
    return {
      status: missing.length ? 'warn' : 'ok',
      detail,
      hint: gpuWanted || onJetson ? JETSON_GPU_NOTE : missing.length ? `remove ${missing.join(', ')} from onnx.executionProviders` : undefined,
      data: { version, providers, configured: config.onnx.executionProviders, missing },
    };
  },
};

/** Which tfjs backend wins here, and why each before it was skipped. */
export const tfjsBackends: Check = {
  id: 'tfjs',
  title: 'tfjs backends',
  async run({ config }) {
    const { selectTfjsBackend } = await import('../engine/tfjs-backend.js');
    const choice = await selectTfjsBackend(config.tfjs.backends);
    return {
      status: 'ok',
      detail: `${choice.backend}${choice.skipped.length ? `; skipped ${choice.skipped.join('; ')}` : ''}`,
      data: { backend: choice.backend, skipped: choice.skipped, priority: config.tfjs.backends },
    };
  },
};

/** The detected board and the device profile that fits it. */
export const hardware: Check = {
  id: 'hardware',
  title: 'hardware and device profile',
  async run({ config }) {
    const hw = detectHardware();
    const fit = profileFor(hw);
    const applied = config.deviceProfile;
    const profileText = applied ? `profile ${applied.name ?? '(none)'} applied (${applied.requested})` : `fits profile ${fit.name ?? '(none)'} (not applied; use --profile auto)`;
    return {
      status: 'ok',
      detail: `${hw.board} '${hw.model}', ${hw.arch}, ${hw.cores} cores, ${hw.totalMemMB} MB; ${profileText}`,
      data: { hardware: hw, fits: fit, applied },
    };
  },
};
