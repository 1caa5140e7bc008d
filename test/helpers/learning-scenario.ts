/**
 * The digits fine-tuning scenario of issue 10, shared by test/learning-*.test.ts and
 * scripts/bench/learning.ts. Rows come from data/digits.csv with the shipped bundles' own
 * split (seed 1, recorded in their manifest): fine-tuning and replay rows from the training and
 * validation parts, evaluation on the test part minus the 32 anchor rows the bundle carries
 * (those are replayed, so they are not held out).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../../src/bundle/index.js';
import { applyDigitsFault, type DigitsFault, type TrainRows } from '../../src/learning/index.js';
import { prng, provenanceOfManifest, readCsvDataset, reproduceSplit, selectRows, shuffle } from '../../src/training/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIGITS_CSV = path.join(ROOT, 'data/digits.csv');

export interface DigitsScenario {
  /** Clean held-out rows (test split minus anchors). */
  clean: TrainRows;
  /** Rows not in the test split, shuffled once (seed 7): take fine-tuning rows from the front, replay rows from the back. */
  pool: TrainRows;
}

const rowsOf = (x: Float32Array, y: ArrayLike<number>, idx: number[]): TrainRows => ({ x: selectRows(x, 64, idx), y: Float32Array.from(idx, (i) => y[i]), rows: idx.length, features: 64 });

/** Load digits with the split of `bundleDir` (every shipped digits bundle has the same one). */
export async function digitsScenario(bundleDir: string): Promise<DigitsScenario> {
  const m = await readManifest(bundleDir);
  const prov = provenanceOfManifest(m);
  const ds = await readCsvDataset(DIGITS_CSV, { label: 'label', task: 'classification', features: prov?.features, classes: m.labels });
  const split = reproduceSplit(ds, prov);
  if (!split) throw new Error(`${bundleDir}: its training split cannot be reproduced from data/digits.csv`);
  const anchors = new Set(((m.reference as { anchor: { rows: number[][] } }).anchor.rows).map((r) => r.join(',')));
  const test = split.test.filter((i) => !anchors.has(Array.from(ds.x.subarray(i * 64, (i + 1) * 64)).join(',')));
  const pool = shuffle([...split.train, ...split.validation], prng(7));
  return { clean: rowsOf(ds.x, ds.y, test), pool: rowsOf(ds.x, ds.y, pool) };
}

/** Rows [from, from + n) of a TrainRows. */
export function slice(r: TrainRows, from: number, n: number): TrainRows {
  return { x: r.x.slice(from * 64, (from + n) * 64), y: r.y.slice(from, from + n), rows: n, features: 64 };
}

/** The same rows with a fault applied. */
export function faulty(r: TrainRows, fault: DigitsFault): TrainRows {
  return { ...r, x: applyDigitsFault(r.x, fault) };
}

/** Random labels 0..9 (seeded) for the same rows. */
export function randomLabels(r: TrainRows, seed: number): TrainRows {
  const rand = prng(seed);
  return { ...r, y: Float32Array.from({ length: r.rows }, () => Math.floor(rand() * 10)) };
}

/** A copy of an ONNX bundle without its trainable source: what a third-party backbone with an `embedding` output looks like. */
export async function withoutSource(bundleDir: string, outDir: string): Promise<string> {
  const { readBundle, writeBundle } = await import('../../src/bundle/index.js');
  const b = await readBundle(bundleDir);
  const { format: _f, artifacts: _a, trainable: _t, ...draft } = b.manifest;
  const files = new Map([...b.files].filter(([p]) => !p.startsWith('source/')));
  await writeBundle(outDir, { ...draft, training: undefined }, files);
  return outDir;
}

/** Fine-tuning rows and replay rows of the acceptance runs: 500 faulty labelled rows, 500 clean replay rows (disjoint). */
/**
 * The trainer's CPU priority in tests: nice 0, not the product's SCHED_IDLE + nice 10. On a
 * loaded machine (CI beside other jobs, two test files at once) an idle-class trainer gets no CPU
 * at all and a test would wait out its bound; the default is tested on its own (learning-process).
 * No pause between epochs either (learning.pauseRatio): tests check answers, the bench the tail.
 */
export const TEST_TRAINER = { scheduling: 'nice', nice: 0, pauseRatio: 0 } as const;

export const FINETUNE_ROWS = 500;
export const REPLAY_ROWS = 500;
