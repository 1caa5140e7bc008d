import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModelSource } from '../src/bundle/index.js';
import { loadModel, MicroBatcher, type Engine } from '../src/engine/index.js';
import { EdgeloopError } from '../src/errors.js';

let engine: Engine;
beforeAll(async () => {
  ({ engine } = await loadModel(await openModelSource('models/digits-fp32'), {
    onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
    tfjs: { backends: ['cpu'] },
  }));
});
afterAll(() => engine?.dispose());

const row = (seed: number) => Float32Array.from({ length: 64 }, (_, i) => Math.sin(seed * 31 + i));
const far = () => Date.now() + 10_000;

async function direct(x: Float32Array): Promise<number[]> {
  const out = await engine.run({ input: { dtype: 'float32', data: x, dims: [x.length / 64, 64] } });
  return Array.from(out.probabilities.data as Float32Array);
}

describe('MicroBatcher', () => {
  it('runs requests arriving within maxDelayMs as one engine call, each getting its own rows', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 32, maxDelayMs: 20, queueLimit: 100 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit({ input: row(i) }, 1, far())));
    expect(b.stats.batches).toBe(1);
    expect(b.stats.rows).toBe(10);
    for (let i = 0; i < 10; i++) {
      expect(results[i].batchRows).toBe(10);
      const expected = await direct(row(i));
      Array.from(results[i].outputs.probabilities.data as Float32Array).forEach((v, c) => expect(v).toBeCloseTo(expected[c], 5));
    }
  });

  it('caps engine calls at maxBatch rows and keeps multi-row requests whole', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 16, maxDelayMs: 5, queueLimit: 100 });
    const two = new Float32Array(128);
    two.set(row(1));
    two.set(row(2), 64);
    const singles = Array.from({ length: 40 }, (_, i) => b.submit({ input: row(i) }, 1, far()));
    const pair = b.submit({ input: two }, 2, far());
    const all = await Promise.all([...singles, pair]);
    expect(b.stats.batches).toBeGreaterThanOrEqual(3);
    expect(Math.max(...all.map((r) => r.batchRows))).toBeLessThanOrEqual(16);
    const p = await pair;
    expect(p.outputs.probabilities.data.length).toBe(20);
    const expected = await direct(two);
    Array.from(p.outputs.probabilities.data as Float32Array).forEach((v, c) => expect(v).toBeCloseTo(expected[c], 5));
  });

  it('answers EDGELOOP_BUSY at once when queueLimit requests wait', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 1000, maxDelayMs: 30, queueLimit: 3, batchWindow: 'fixed' });
    const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => b.submit({ input: row(i) }, 1, far())));
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(3);
    const refused = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
    expect(refused.map((s) => (s.reason as EdgeloopError).code)).toEqual(['EDGELOOP_BUSY', 'EDGELOOP_BUSY']);
    expect(b.stats.busy).toBe(2);
  });

  it('answers EDGELOOP_TIMEOUT for a request whose deadline passes in the queue', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 32, maxDelayMs: 40, queueLimit: 10, batchWindow: 'fixed' });
    const late = b.submit({ input: row(1) }, 1, Date.now() + 5);
    const onTime = b.submit({ input: row(2) }, 1, far());
    await expect(late).rejects.toMatchObject({ code: 'EDGELOOP_TIMEOUT' });
    expect((await onTime).outputs.probabilities.data.length).toBe(10);
  });

  it('answers EDGELOOP_INTERNAL for an engine failure and keeps serving', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 32, maxDelayMs: 1, queueLimit: 10 });
    await expect(b.submit({ input: new Float32Array(63) }, 1, far())).rejects.toMatchObject({ code: 'EDGELOOP_INTERNAL' });
    expect((await b.submit({ input: row(3) }, 1, far())).outputs.probabilities.data.length).toBe(10);
  });

  it('drains: everything queued is answered, then new requests are refused', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 4, maxDelayMs: 50, queueLimit: 100, batchWindow: 'fixed' });
    const queued = Array.from({ length: 10 }, (_, i) => b.submit({ input: row(i) }, 1, far()));
    await b.drain();
    const results = await Promise.all(queued);
    expect(results).toHaveLength(10);
    await expect(b.submit({ input: row(1) }, 1, far())).rejects.toMatchObject({ code: 'EDGELOOP_SHUTTING_DOWN' });
  });
});

describe('MicroBatcher adaptive window', () => {
  it('runs a lone request at once instead of waiting maxDelayMs, and batches what arrives while the engine runs', async () => {
    const b = new MicroBatcher(engine, { maxBatch: 32, maxDelayMs: 1000, queueLimit: 100 });
    const started = performance.now();
    await b.submit({ input: row(1) }, 1, far());
    expect(performance.now() - started).toBeLessThan(500); // far below the 1000 ms window it did not wait for
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => b.submit({ input: row(i) }, 1, far())));
    expect(burst.every((r) => r.batchRows === 6)).toBe(true);
  });
  it('gives the event loop a turn between batches: a backlog does not hold the socket while it runs', async () => {
    // The ONNX engine runs synchronously; the batcher, not the engine, hands each batch its own turn.
    const b = new MicroBatcher(engine, { maxBatch: 8, maxDelayMs: 5, queueLimit: 100, batchWindow: 'adaptive' });
    const all = Promise.all(Array.from({ length: 40 }, (_, i) => b.submit({ input: row(i) }, 1, far())));
    const batchesSeenByTurn = [b.stats.batches];
    const tick = () => {
      batchesSeenByTurn.push(b.stats.batches);
      if (b.stats.batches < 5) setImmediate(tick);
    };
    setImmediate(tick);
    await all;
    await new Promise((r) => setImmediate(r));
    expect(b.stats.batches).toBe(5);
    // Each turn saw at most one more batch than the turn before it.
    for (let k = 1; k < batchesSeenByTurn.length; k++) expect(batchesSeenByTurn[k] - batchesSeenByTurn[k - 1]).toBeLessThanOrEqual(1);
    expect(batchesSeenByTurn.at(-1)).toBe(5);
  });
  it('asks the engine for the first output only when no request in the batch reads the others', async () => {
    expect(engine.outputs.map((o) => o.name)).toEqual(['probabilities', 'embedding']);
    const b = new MicroBatcher(engine, { maxBatch: 32, maxDelayMs: 5, queueLimit: 100 });
    const alone = await Promise.all([b.submit({ input: row(1) }, 1, far(), true), b.submit({ input: row(2) }, 1, far(), true)]);
    for (const r of alone) expect(Object.keys(r.outputs)).toEqual(['probabilities']);
    // One request in the batch wants every output (a tensor request): the whole batch gets them.
    const mixed = await Promise.all([b.submit({ input: row(1) }, 1, far(), true), b.submit({ input: row(2) }, 1, far())]);
    expect(mixed[0].batchRows).toBe(2);
    for (const r of mixed) expect(Object.keys(r.outputs).sort()).toEqual(['embedding', 'probabilities']);
    Array.from(mixed[0].outputs.probabilities.data as Float32Array).forEach((v, c) => expect(v).toBeCloseTo(alone[0].outputs.probabilities.data[c] as number, 6));
  });
});
