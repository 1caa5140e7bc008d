import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxGraphBuilder } from '../src/training/onnx/onnx-writer.js';
import { shippedModels } from './helpers/bundles.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import type { OipReply } from './helpers/oip-client.js';

/** Two inputs and two outputs, all rows: sum = a + b, twice = 2a. */
function rowsModel(): Uint8Array {
  const g = new OnnxGraphBuilder('rows');
  g.addInput({ name: 'a', elemType: 'float32', shape: ['N', 3] });
  g.addInput({ name: 'b', elemType: 'float32', shape: ['N', 3] });
  g.addNode('Add', ['a', 'b'], ['sum']);
  g.addNode('Mul', ['a', g.addFloats('two', [2])], ['twice']);
  g.addOutput({ name: 'sum', elemType: 'float32', shape: ['N', 3] });
  g.addOutput({ name: 'twice', elemType: 'float32', shape: ['N', 3] });
  return g.encode();
}

/** Declared like rows, but its output sums over them: requests must never share a run. */
function pooledModel(): Uint8Array {
  const g = new OnnxGraphBuilder('pooled');
  g.addInput({ name: 'x', elemType: 'float32', shape: ['N', 3] });
  g.addNode('ReduceSum', ['x', g.addInt64s('axes', [0])], ['total'], { keepdims: 1 });
  g.addOutput({ name: 'total', elemType: 'float32', shape: [1, 3] });
  return g.encode();
}

/** Shaped like rows, but each output row sums the rows before it: only a probe of values tells. */
function cumsumModel(): Uint8Array {
  const g = new OnnxGraphBuilder('cumsum');
  g.addInput({ name: 'x', elemType: 'float32', shape: ['N', 3] });
  g.addNode('CumSum', ['x', g.addInt64s('axis', [0], [])], ['running']);
  g.addOutput({ name: 'running', elemType: 'float32', shape: ['N', 3] });
  return g.encode();
}

/** A constant: no inputs at all. */
function constantModel(): Uint8Array {
  const g = new OnnxGraphBuilder('constant');
  g.addNode('Identity', [g.addFloats('c', [1, 2, 3])], ['out']);
  g.addOutput({ name: 'out', elemType: 'float32', shape: [3] });
  return g.encode();
}

const tensor = (name: string, rows: number[][]) => ({ name, datatype: 'FP32', shape: [rows.length, rows[0].length], data: rows.flat() });
const rowsOf = (n: number, seed: number) => Array.from({ length: n }, (_, r) => [seed + r, seed * 2 - r, r / 4]);

describe('OIP requests on models whose tensors follow rows', () => {
  let d: RunningDaemon;
  let client: TestClient;
  let url: string;
  beforeAll(async () => {
    const dir = shippedModels('digits');
    writeFileSync(path.join(dir, 'rows.onnx'), rowsModel());
    writeFileSync(path.join(dir, 'pooled.onnx'), pooledModel());
    writeFileSync(path.join(dir, 'constant.onnx'), constantModel());
    writeFileSync(path.join(dir, 'cumsum.onnx'), cumsumModel());
    // A fixed batch window: requests arriving within 50 ms share a call whatever this machine's speed.
    d = await startDaemon({ config: { modelsDir: dir, http: { port: 0 }, serving: { batchWindow: 'fixed', maxDelayMs: 50 } } });
    url = d.daemon.http!.url;
    client = await TestClient.connect(d.url, 4);
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });
  const served = (name: string) => d.daemon.servedModels().get(name)!;

  it('tells at load which models can share engine calls: declared rows and seen to follow them', async () => {
    expect(served('rows').batchable).toBe(true);
    expect(served('digits').batchable).toBe(true);
    expect(served('pooled').batchable).toBe(false);
    expect(served('cumsum').batchable).toBe(false);
    expect(served('constant').batchable).toBe(false);
    const meta = (await (await fetch(`${url}/v2/models/pooled`)).json()) as { parameters: { batchable: boolean } };
    expect(meta.parameters.batchable).toBe(false);
  });

  it('micro-batches concurrent OIP requests (MQTT and HTTP) with each reply exactly its own rows', async () => {
    const before = served('rows').stats;
    const batches0 = before.batches;
    const requests0 = before.requests;
    const cases = Array.from({ length: 40 }, (_, i) => ({ a: rowsOf(1 + (i % 4), i), b: rowsOf(1 + (i % 4), 100 - i) }));
    const replies = await Promise.all(
      cases.map((c, i) => {
        const body = { id: `r${i}`, inputs: [tensor('a', c.a), tensor('b', c.b)] };
        if (i % 2 === 0) return client.request(d.infer('rows'), body) as unknown as Promise<OipReply>;
        return fetch(`${url}/v2/models/rows/infer`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json() as Promise<OipReply>);
      }),
    );
    replies.forEach((r, i) => {
      const { a, b } = cases[i];
      expect(r.error).toBeUndefined();
      const sum = r.outputs!.find((o) => o.name === 'sum')!;
      const twice = r.outputs!.find((o) => o.name === 'twice')!;
      expect(sum.shape).toEqual([a.length, 3]);
      expect(sum.data).toEqual(a.flat().map((v, k) => Math.fround(Math.fround(v) + Math.fround(b.flat()[k]))));
      expect(twice.data).toEqual(a.flat().map((v) => Math.fround(v) * 2));
    });
    const after = served('rows').stats;
    expect(after.requests - requests0).toBe(40);
    expect(after.batches - batches0).toBeLessThan(40); // some requests rode in one engine call together
  });

  it('runs a model whose outputs do not follow rows one request per call: each gets its own sum', async () => {
    const cases = Array.from({ length: 20 }, (_, i) => rowsOf(1 + (i % 3), i));
    const replies = (await Promise.all(cases.map((x) => client.request(d.infer('pooled'), { inputs: [tensor('x', x)] })))) as unknown as OipReply[];
    replies.forEach((r, i) => {
      const want = [0, 1, 2].map((k) => cases[i].reduce((s, row) => s + Math.fround(row[k]), 0));
      expect(r.outputs![0].shape).toEqual([1, 3]);
      (r.outputs![0].data as number[]).forEach((v, k) => expect(v).toBeCloseTo(want[k], 4));
    });
  });

  it('never lets a model that mixes its rows answer one client with another client\'s rows', async () => {
    const cases = Array.from({ length: 20 }, (_, i) => rowsOf(1 + (i % 3), 10 * i));
    const replies = (await Promise.all(cases.map((x) => client.request(d.infer('cumsum'), { inputs: [tensor('x', x)] })))) as unknown as OipReply[];
    replies.forEach((r, i) => {
      const running = [0, 0, 0];
      const want = cases[i].flatMap((row) => row.map((v, k) => (running[k] += Math.fround(v))));
      (r.outputs![0].data as number[]).forEach((v, k) => expect(v).toBeCloseTo(want[k], 3));
    });
  });

  it('serves a model that takes no inputs over OIP, and answers row requests to it as OIP requests, with a clear code', async () => {
    const reply = (await client.request(d.infer('constant'), { inputs: [] })) as unknown as OipReply;
    expect(reply.outputs![0]).toMatchObject({ name: 'out', datatype: 'FP32', shape: [3], data: [1, 2, 3] });
    const http = (await (await fetch(`${url}/v2/models/constant/infer`, { method: 'POST', body: '{"inputs": []}' })).json()) as OipReply;
    expect(http.outputs![0].data).toEqual([1, 2, 3]);
    const rows = await client.request(d.infer('constant'), { inputs: [1, 2, 3] });
    expect(rows.error?.code).toBe('EDGELOOP_BAD_INPUT');
    expect(rows.error?.message).toMatch(/must be a tensor object/);
    const named = await client.request(d.infer('constant'), { inputs: [tensor('x', [[1, 2, 3]])] });
    expect(named.error?.message).toMatch(/'x' is not an input of constant \(inputs: none\)/);
  });

  it('gives bundle OIP replies prediction ids that feedback accepts, and feeds the drift monitor as rows do', async () => {
    const monitor = d.daemon.drift!.get('digits')!;
    const seen = monitor.openRows;
    const x = digitsSample.rows.slice(0, 4);
    const reply = (await client.request(d.infer('digits'), { inputs: [tensor('input', x)] })) as unknown as OipReply & { parameters?: { prediction_ids?: string[] } };
    const ids = reply.parameters?.prediction_ids ?? [];
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    expect(monitor.openRows).toBe(seen + 4);
    const http = (await (await fetch(`${url}/v2/models/digits/infer`, { method: 'POST', body: JSON.stringify({ inputs: [tensor('input', x.slice(0, 1))] }) })).json()) as { parameters?: { prediction_ids?: string[] } };
    expect(http.parameters?.prediction_ids).toHaveLength(1);
    const ack = await client.request(d.daemon.topics.feedback('digits'), { predictionId: ids[2], label: String(digitsSample.labels[2]) });
    expect(ack).toMatchObject({ accepted: 1 });
    const late = await client.request(d.daemon.topics.feedback('digits'), { predictionId: http.parameters!.prediction_ids![0], label: String(digitsSample.labels[0]) });
    expect(late).toMatchObject({ accepted: 1 });
  });
});
