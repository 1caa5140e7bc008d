import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModelSource, readBundle, writeBundle, type BundleDraft } from '../src/bundle/index.js';
import { loadModel } from '../src/engine/index.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bundle-'));
const draft: BundleDraft = {
  name: 'tiny',
  version: '1.0.0',
  runtime: 'onnx',
  task: 'regression',
  entry: 'model.onnx',
  inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 2] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
};

describe('bundles', () => {
  it('writes atomically and reads back with every hash verified', async () => {
    const dir = path.join(tmp(), 'tiny');
    const manifest = await writeBundle(dir, draft, new Map([['model.onnx', Buffer.from('not really onnx')]]));
    expect(manifest.artifacts[0]).toMatchObject({ path: 'model.onnx', bytes: 15 });
    expect(readdirSync(path.dirname(dir))).toEqual(['tiny']); // no temp folder left behind
    const read = await readBundle(dir);
    expect(read.manifest).toEqual(manifest);
    expect(Buffer.from(read.files.get('model.onnx')!).toString()).toBe('not really onnx');
    await expect(writeBundle(dir, draft, new Map([['model.onnx', Buffer.from('x')]]))).rejects.toThrow();
    await writeBundle(dir, { ...draft, version: '1.0.1' }, new Map([['model.onnx', Buffer.from('x')]]), { overwrite: true });
    expect((await readBundle(dir)).manifest.version).toBe('1.0.1');
  });

  it('refuses a tampered or truncated artifact', async () => {
    const dir = path.join(tmp(), 'digits');
    cpSync('models/digits', dir, { recursive: true });
    const file = path.join(dir, 'model.onnx');
    const bytes = readFileSync(file);
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(file, bytes);
    await expect(readBundle(dir)).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_TAMPERED', message: expect.stringContaining('sha256') });
    writeFileSync(file, bytes.subarray(0, 100));
    await expect(readBundle(dir)).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_TAMPERED', message: expect.stringContaining('100 bytes') });
  });

  it('refuses manifests that do not match the schema, naming the field', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'bundle.json'), '{"format":"edgeloop-bundle/1","name":"Bad Name"}');
    await expect(readBundle(dir)).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_INVALID', message: expect.stringContaining("'name'") });
    writeFileSync(path.join(dir, 'bundle.json'), '{not json');
    await expect(readBundle(dir)).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_INVALID' });
    await expect(writeBundle(path.join(dir, 'x'), draft, new Map([['../escape.onnx', Buffer.from('x')]]))).rejects.toMatchObject({ code: 'EDGELOOP_BUNDLE_INVALID' });
    expect(existsSync(path.join(dir, 'escape.onnx'))).toBe(false);
  });

  it('derives the signature of a bare model.onnx from ONNX Runtime', async () => {
    const { manifest, engine } = await loadModel(await openModelSource('models/digits-fp32/model.onnx'), {
      onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
      tfjs: { backends: ['cpu'] },
    });
    expect(manifest.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: [-1, 64] }]);
    expect(manifest.outputs[0]).toEqual({ name: 'probabilities', dtype: 'float32', shape: [-1, 10] });
    expect(manifest.task).toBe('embedding'); // raw values: a bare model is never taken for a classifier (issue 11)
    await engine.dispose();
  });
});

describe('daemon with a mixed models folder', () => {
  let d: RunningDaemon;
  beforeAll(async () => {
    const dir = tmp();
    cpSync('models/digits-tfjs', path.join(dir, 'digits-tfjs'), { recursive: true });
    cpSync('models/digits', path.join(dir, 'digits'), { recursive: true });
    writeFileSync(path.join(dir, 'digits', 'model.onnx'), Buffer.from('tampered'));
    cpSync('models/digits-fp32/model.onnx', path.join(dir, 'bare.onnx'));
    d = await startDaemon({ config: { modelsDir: dir } });
  });
  afterAll(() => d?.stop());

  it('skips the tampered bundle, serves the others and the bare .onnx (standardising nothing)', async () => {
    expect([...d.daemon.servedModels().keys()].sort()).toEqual(['bare', 'digits-tfjs']);
    const client = await TestClient.connect(d.url, 4);
    try {
      expect((await client.request(d.infer('digits'), { inputs: digitsSample.rows[0] })).error?.code).toBe('EDGELOOP_MODEL_NOT_FOUND');
      const ok = await client.request(d.infer('digits-tfjs'), { inputs: digitsSample.rows[0] });
      expect(Number(ok.predictions![0].label)).toBe(digitsSample.labels[0]);
      const bare = await client.request(d.infer('bare'), { inputs: digitsSample.rows[0] });
      expect(bare.version).toMatch(/^[0-9a-f]{12}$/); // a bare model is versioned by its hash
      // Raw outputs, not softmaxed into a guessed classifier: this model's own probabilities.
      const raw = (bare.predictions![0] as { embedding?: number[] }).embedding!;
      expect(raw).toHaveLength(10);
      expect(raw.indexOf(Math.max(...raw))).toBe(digitsSample.labels[0]);
    } finally {
      await client.close();
    }
  });
});
