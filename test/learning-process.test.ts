import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle, readManifest } from '../src/bundle/index.js';
import { bundleAccuracy, fineTune, nextFineTuneVersion, parentVariant, resolveStrategy, type FineTuneProgress } from '../src/learning/index.js';
import { digitsScenario, faulty, FINETUNE_ROWS, REPLAY_ROWS, ROOT, slice, TEST_TRAINER, withoutSource, type DigitsScenario } from './helpers/learning-scenario.js';

const DIGITS = path.join(ROOT, 'models/digits');
const DIGITS_TFJS = path.join(ROOT, 'models/digits-tfjs');
let tmp: string;
let s: DigitsScenario;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'edgeloop-learning-'));
  s = await digitsScenario(DIGITS);
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

/** A fresh, empty work folder for one run. */
async function workDir(name: string): Promise<string> {
  const d = path.join(tmp, name);
  await fs.mkdir(d);
  return d;
}

const rows = () => faulty(slice(s.pool, 0, FINETUNE_ROWS), 'shift-right');
const replay = () => slice(s.pool, s.pool.rows - REPLAY_ROWS, REPLAY_ROWS);

describe('strategy and version rules', () => {
  it('auto is full fine-tuning of a trainable source, a new head for an ONNX backbone without one', async () => {
    const onnx = await readManifest(DIGITS);
    expect(resolveStrategy(onnx, 'auto')).toEqual({ strategy: 'full', path: { kind: 'layers', entry: 'source/model.json' } });
    expect(parentVariant(onnx)).toBe('onnx-int8-static');
    expect(parentVariant(await readManifest(DIGITS_TFJS))).toBe('tfjs');
    const stripped = await readManifest(await withoutSource(DIGITS, path.join(tmp, 'no-source-rules')));
    expect(resolveStrategy(stripped, 'auto').strategy).toBe('head');
    expect(() => resolveStrategy(stripped, 'full')).toThrow(/only --strategy head/);
    expect(() => resolveStrategy({ ...onnx, task: 'regression' }, 'auto')).toThrow(/classifiers/);
  });

  it('versions: 1.0.0 -> 1.0.0-ft.1 -> 1.0.0-ft.2, skipping taken ones', () => {
    expect(nextFineTuneVersion('1.0.0')).toBe('1.0.0-ft.1');
    expect(nextFineTuneVersion('1.0.0-ft.1')).toBe('1.0.0-ft.2');
    expect(nextFineTuneVersion('1.0.0', ['1.0.0-ft.1'])).toBe('1.0.0-ft.2');
  });
});

describe('the trainer process', () => {
  it('kill -9 mid-run: the outcome is interrupted and no candidate folder remains', async () => {
    const work = await workDir('killed');
    const seen: FineTuneProgress[] = [];
    const run = fineTune({ bundleDir: DIGITS, rows: rows(), replay: replay(), workDir: work, policy: TEST_TRAINER, onProgress: (p) => {
      seen.push(p);
      if (p.stage === 'training' && p.epoch === 1 && run.pid) process.kill(run.pid, 'SIGKILL');
    } });
    const r = await run.result;
    expect(r).toMatchObject({ outcome: 'interrupted', reason: 'killed' });
    expect(seen.some((p) => p.stage === 'training')).toBe(true);
    expect(await fs.readdir(work)).toEqual([]);
  }, 60_000);

  it('runs the trainer at nice 10 and, on Linux with chrt and ionice, under SCHED_IDLE and the idle I/O class by default', async () => {
    const work = await workDir('default-priority');
    const run = fineTune({ bundleDir: DIGITS, rows: rows(), workDir: work });
    // Once chrt and ionice have exec'd node (the command is neither any more), the policy is set for good.
    let stat: string[] = [];
    for (let i = 0; i < 1000 && stat.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      if (!run.pid) continue;
      const raw = readFileSync(`/proc/${run.pid}/stat`, 'utf8');
      if (!raw.includes('(chrt)') && !raw.includes('(ionice)')) stat = raw.replace(/^.*\) /s, '').split(' ');
    }
    // And the idle I/O class (util-linux's ionice).
    const io = existsSync('/usr/bin/ionice') && run.pid ? execFileSync('/usr/bin/ionice', ['-p', String(run.pid)], { encoding: 'utf8' }).trim() : '';
    run.cancel();
    expect(await run.result).toMatchObject({ outcome: 'interrupted', reason: 'cancelled' });
    // /proc/<pid>/stat after the command: field 19 is the nice value, field 41 the policy (5: SCHED_IDLE).
    expect(Number(stat[16])).toBe(10);
    if (existsSync('/usr/bin/chrt')) expect(Number(stat[38])).toBe(5);
    if (existsSync('/usr/bin/ionice')) expect(io).toBe('idle');
  }, 30_000);

  it('cancel and an exhausted time budget both stop the run and leave nothing behind', async () => {
    const work = await workDir('stopped');
    const cancelled = fineTune({ bundleDir: DIGITS_TFJS, rows: rows(), workDir: work, policy: TEST_TRAINER, onProgress: (p) => p.stage === 'training' && cancelled.cancel() });
    expect(await cancelled.result).toMatchObject({ outcome: 'interrupted', reason: 'cancelled' });
    const timedOut = fineTune({ bundleDir: DIGITS_TFJS, rows: rows(), workDir: work, policy: { ...TEST_TRAINER, timeBudgetSeconds: 1, epochs: 1000 } });
    expect(await timedOut.result).toMatchObject({ outcome: 'interrupted', reason: 'timeout' });
    expect(await fs.readdir(work)).toEqual([]);
  }, 60_000);

  it('bad input is a failed outcome with a code, not a crash', async () => {
    const work = await workDir('failed');
    const few = await fineTune({ bundleDir: DIGITS, rows: slice(s.pool, 0, 5), workDir: work, policy: TEST_TRAINER }).result;
    expect(few).toMatchObject({ outcome: 'failed', code: 'EDGELOOP_FINETUNE_FAILED' });
    expect(few.outcome === 'failed' && few.message).toMatch(/at least 20 labelled rows/);
    const badLabel = await fineTune({ bundleDir: DIGITS, rows: { ...slice(s.pool, 0, 50), y: new Float32Array(50).fill(12) }, workDir: work, policy: TEST_TRAINER }).result;
    expect(badLabel.outcome === 'failed' && badLabel.message).toMatch(/label 12 is not a class index/);
    const regression = await fineTune({ bundleDir: path.join(ROOT, 'models/diabetes'), rows: { x: new Float32Array(500), y: new Float32Array(50), rows: 50, features: 10 }, workDir: work, policy: TEST_TRAINER }).result;
    expect(regression.outcome === 'failed' && regression.message).toMatch(/regression model/);
    const missing = await fineTune({ bundleDir: path.join(tmp, 'nope'), rows: rows(), workDir: work, policy: TEST_TRAINER }).result;
    expect(missing).toMatchObject({ outcome: 'failed', code: 'EDGELOOP_BUNDLE_INVALID' });
    expect(await fs.readdir(work)).toEqual([]);
  }, 60_000);
});

describe('head on the embedding of an ONNX backbone without a trainable source', () => {
  it('trains a softmax head on the frozen int8 backbone and writes backbone + head as one ONNX graph', async () => {
    const dir = await withoutSource(DIGITS, path.join(tmp, 'no-source'));
    const held = faulty(s.clean, 'shift-right');
    const before = await bundleAccuracy(dir, held);
    const r = await fineTune({ bundleDir: dir, rows: rows(), replay: replay(), policy: TEST_TRAINER }).result;
    if (r.outcome !== 'candidate') throw new Error(`${r.outcome}: ${r.message}`);
    try {
      expect(r.summary.strategy).toBe('head');
      const b = await readBundle(r.dir);
      expect(b.manifest.runtime).toBe('onnx');
      expect(b.manifest.quantization).toBe('int8');
      expect(b.manifest.outputs.map((o) => o.name)).toEqual(['probabilities', 'embedding']);
      expect([...b.files.keys()].sort()).toEqual(['curves.svg', 'model.onnx']);
      // A new head cannot undo an input-level shift entirely, but it helps a lot (measured 0.48 -> 0.88).
      expect(await bundleAccuracy(r.dir, held)).toBeGreaterThan(before + 0.2);
      expect(await bundleAccuracy(r.dir, s.clean)).toBeGreaterThan(0.9);
    } finally {
      await r.discard();
    }
  }, 60_000);

  it("last-layers on the tfjs bundle trains only the last K layers and keeps the parent's format", async () => {
    const r = await fineTune({ bundleDir: DIGITS_TFJS, rows: faulty(slice(s.pool, 0, 200), 'stuck-pixels'), policy: { ...TEST_TRAINER, strategy: 'last-layers', lastLayers: 1, epochs: 5 } }).result;
    if (r.outcome !== 'candidate') throw new Error(`${r.outcome}: ${r.message}`);
    try {
      const b = await readBundle(r.dir);
      const p = await readBundle(DIGITS_TFJS);
      expect(b.manifest.training).toMatchObject({ strategy: 'last-layers', lastLayers: 1, exportedAs: 'tfjs' });
      // Frozen layers keep the parent's weights exactly; the last one moved.
      const weights = (files: Map<string, Uint8Array>) => {
        const specs = (JSON.parse(Buffer.from(files.get('model.json')!).toString()) as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] }).weightsManifest[0].weights;
        const data = new Float32Array(Uint8Array.from(files.get('weights.bin')!).buffer);
        const out = new Map<string, Float32Array>();
        let at = 0;
        for (const w of specs) {
          const n = w.shape.reduce((a, d) => a * d, 1);
          out.set(w.name, data.slice(at, at + n));
          at += n;
        }
        return out;
      };
      const mine = weights(b.files);
      const theirs = weights(p.files);
      for (const name of ['dense_0/kernel', 'dense_1/kernel', 'dense_1/bias']) expect(mine.get(name)).toEqual(theirs.get(name));
      expect(mine.get('output/kernel')).not.toEqual(theirs.get('output/kernel'));
    } finally {
      await r.discard();
    }
  }, 60_000);
});
