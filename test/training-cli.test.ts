import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../src/bundle/index.js';
import { RunStore } from '../src/training/runs/index.js';
import { CLI } from './helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-cli-training-'));
const home = path.join(tmp, 'home');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real CLI, compiled (test/helpers/cli.ts). */
function cli(...args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EDGELOOP_HOME: home } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const file = (name: string, text: string): string => {
  const p = path.join(tmp, name);
  writeFileSync(p, text);
  return p;
};

describe('edgeloop train: bad input ends with one clear line, a non-zero exit and no bundle', () => {
  const good = file('good.csv', 'a,b,c,d,label\n1,2,3,4,x\n2,3,4,5,y\n3,4,5,6,x\n4,5,6,7,y\n5,6,7,8,x\n6,7,8,9,y\n7,8,9,1,x\n8,9,1,2,y\n9,1,2,3,x\n1,3,5,7,y\n');
  const dense = file('dense.json', JSON.stringify({ layers: [{ type: 'dense', units: 4 }], training: { epochs: 1 } }));
  const cases: { name: string; data: string; spec: string; label?: string; code: string; message: RegExp }[] = [
    { name: 'missing file', data: path.join(tmp, 'nope.csv'), spec: dense, code: 'EDGELOOP_DATA_INVALID', message: /nope\.csv: no such file/ },
    { name: 'label column that does not exist', data: good, spec: dense, label: 'target', code: 'EDGELOOP_DATA_INVALID', message: /label column 'target' not found; the columns are 'a', 'b', 'c', 'd', 'label'/ },
    { name: 'non-numeric feature', data: file('text.csv', 'a,b,label\n1,2,x\n3,red,y\n'), spec: dense, code: 'EDGELOOP_DATA_INVALID', message: /text\.csv line 3: feature 'b' is not numeric \('red'\)/ },
    { name: 'empty CSV', data: file('empty.csv', ''), spec: dense, code: 'EDGELOOP_DATA_INVALID', message: /empty\.csv: the file is empty/ },
    { name: 'unknown layer', data: good, spec: file('lstm.json', JSON.stringify({ layers: [{ type: 'lstm', units: 4 }] })), code: 'EDGELOOP_SPEC_INVALID', message: /'layers\.0' has unknown layer type 'lstm'/ },
    {
      name: 'impossible shapes',
      data: good,
      spec: file('conv.json', JSON.stringify({ inputShape: [2, 2, 1], layers: [{ type: 'conv2d', filters: 2, kernelSize: 5 }, { type: 'flatten' }] })),
      code: 'EDGELOOP_SPEC_INVALID',
      message: /impossible shape: a 5x5 kernel does not fit the 2x2x1 input/,
    },
    { name: 'missing spec file', data: good, spec: path.join(tmp, 'nope.json'), code: 'EDGELOOP_SPEC_INVALID', message: /nope\.json: no such spec file/ },
  ];

  it('for each kind of bad input (run at once, sharing one experiment log)', async () => {
    const results = await Promise.all(cases.map((c, i) => cli('train', '--data', c.data, '--label', c.label ?? 'label', '--spec', c.spec, '--out', path.join(tmp, `out-${i}`))));
    results.forEach((r, i) => {
      const c = cases[i];
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, c.name).toMatch(new RegExp(`^edgeloop: [^\\n]+ \\[${c.code}\\]\\n$`));
      expect(r.stderr, c.name).toMatch(c.message);
      expect(existsSync(path.join(tmp, `out-${i}`)), c.name).toBe(false);
    });
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const store = RunStore.open(home);
    const runs = store.list({ limit: 100 });
    store.close();
    expect(runs).toHaveLength(cases.length);
    expect(runs.every((r) => r.status === 'failed' && r.error)).toBe(true);
  }, 60_000);
});

describe('edgeloop train, eval, runs, tune, ensemble, export', () => {
  const out = (name: string) => path.join(tmp, name);

  it('trains, records the run and evaluates the written bundles', async () => {
    const t = await cli('train', '--data', 'data/wine.csv', '--label', 'label', '--spec', 'specs/wine.json', '--out', out('wine'), '--export', 'onnx-int8', '--epochs', '25', '--json');
    expect(t.code, t.stderr).toBe(0);
    const trained = JSON.parse(t.stdout);
    expect(trained.bundles.map((b: { variant: string }) => b.variant)).toEqual(['tfjs', 'onnx-int8']);
    expect(t.stderr).toMatch(/training on tfjs backend 'wasm'/);
    expect(t.stderr).toMatch(/epoch\s+1\/25/);
    const manifest = await readManifest(out('wine-onnx-int8'));
    expect(manifest.name).toBe('wine-onnx-int8');

    const e = await cli('eval', out('wine-onnx-int8'), '--data', 'data/wine.csv', '--json');
    expect(e.code, e.stderr).toBe(0);
    const evaluated = JSON.parse(e.stdout);
    expect(evaluated.data.used).toBe('test split');
    expect(evaluated.metrics.accuracy).toBe((manifest.metrics as { testAccuracy: number }).testAccuracy);
    expect(evaluated.metrics.perClass.map((c: { label: string }) => c.label)).toEqual(['0', '1', '2']);

    const text = await cli('eval', out('wine'), '--data', 'data/wine.csv');
    expect(text.stdout).toMatch(/precision\s+recall\s+f1-score\s+support/);
    expect(text.stdout).toMatch(/confusion matrix/);

    const list = await cli('runs', 'list', '--json');
    const runs = JSON.parse(list.stdout) as { id: number; kind: string; status: string; backend: string }[];
    const run = runs.find((r) => r.status === 'completed')!;
    expect(run).toMatchObject({ id: trained.runId, kind: 'train', backend: 'wasm' });
    const show = await cli('runs', 'show', String(trained.runId), '--json');
    const detail = JSON.parse(show.stdout);
    expect(detail.params.variants).toEqual(['tfjs', 'onnx-int8']);
    expect(detail.epochs.length).toBe(trained.epochs.run);
    expect(detail.epochs[0].metrics).toHaveProperty('val_accuracy');
    expect(detail.artifacts).toHaveLength(2);

    const missing = await cli('runs', 'show', '9999');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^edgeloop: no training run 9999 in the experiment log \[EDGELOOP_RUN_NOT_FOUND\]\n$/);
  }, 60_000);

  it('tunes a grid with k-fold CV and writes the best model', async () => {
    const r = await cli('tune', '--data', 'data/wine.csv', '--label', 'label', '--spec', 'specs/wine.json', '--grid', '{"layers.0.units": [4, 8]}', '--folds', '2', '--epochs', '8', '--out', out('wine-tuned'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const tuned = JSON.parse(r.stdout);
    expect(tuned.trials.map((t: { rank: number }) => t.rank)).toEqual([1, 2]);
    expect(tuned.trials[0].scores).toHaveLength(2);
    expect(tuned.trials[0].mean).toBeGreaterThanOrEqual(tuned.trials[1].mean);
    const m = await readManifest(out('wine-tuned'));
    expect((m.training as { tuning: { best: { params: unknown } } }).tuning.best.params).toEqual(tuned.trials[0].params);
    const show = JSON.parse((await cli('runs', 'show', String(tuned.runId), '--json')).stdout);
    expect(show.kind).toBe('tune');
    expect(show.trials).toHaveLength(2);

    const bad = await cli('tune', '--data', 'data/wine.csv', '--label', 'label', '--spec', 'specs/wine.json', '--grid', '{"layers.7.units": [4]}', '--out', out('wine-bad'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/grid key 'layers\.7\.units': the spec has no 'layers\.7' \[EDGELOOP_SPEC_INVALID\]/);
  }, 60_000);

  it('builds a soft-voting ensemble that `eval` scores like any bundle, and exports a trained bundle', async () => {
    const r = await cli('ensemble', out('wine'), out('wine-tuned'), '--out', out('wine-vote'), '--data', 'data/wine.csv', '--json');
    expect(r.code, r.stderr).toBe(0);
    const built = JSON.parse(r.stdout);
    expect(built.manifest.runtime).toBe('onnx');
    // Same data and split: the shared standardisation stays in the bundle, and the test split is used.
    expect(built.manifest.preprocessing.standardize.mean).toHaveLength(13);
    expect(built.members).toHaveLength(2);
    const e = JSON.parse((await cli('eval', out('wine-vote'), '--data', 'data/wine.csv', '--json')).stdout);
    expect(e.data.used).toBe('test split');
    expect(e.metrics.accuracy).toBe(built.metrics.accuracy);

    const x = await cli('export', out('wine'), '--to', 'onnx-fp32,tfjs-float16', '--data', 'data/wine.csv', '--json');
    expect(x.code, x.stderr).toBe(0);
    const result = JSON.parse(x.stdout);
    expect(result.exported.map((b: { dir: string }) => path.basename(b.dir))).toEqual(['wine-onnx-fp32', 'wine-tfjs-float16']);
    expect(result.exported[0].metrics.vsSource.accuracyChange).toBe(0);
    // Measured on this machine next to the source; the recommendation is one of them, within tolerance.
    type Model = { variant: string; withinTolerance: boolean; recommended: boolean; throughput: { batch: number; rowsPerSecond: number; vsBaseline: number }[] };
    const models: Model[] = result.models;
    expect(models.map((m) => m.variant)).toEqual(['source', 'onnx-fp32', 'tfjs-float16']);
    expect(result.baseline).toBe('onnx-fp32');
    expect(models.every((m) => m.throughput.map((t) => t.batch).join() === '1,32' && m.throughput.every((t) => t.rowsPerSecond > 0))).toBe(true);
    const recommended = models.filter((m) => m.recommended);
    expect(recommended.map((m) => m.variant)).toEqual([result.recommended]);
    expect(recommended[0].withinTolerance).toBe(true);
    expect(recommended[0].throughput.every((t) => t.vsBaseline >= 1)).toBe(true);
    const again = await cli('export', out('wine'), '--to', 'onnx-fp32');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/wine-onnx-fp32 already exists; choose another --out or pass --overwrite/);
  }, 60_000);
});
