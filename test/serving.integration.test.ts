import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBinaryRequest } from './helpers/binary.js';
import { TestClient, type Reply } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const MODELS = ['digits', 'digits-tfjs', 'digits-fp32'];

// The same contract over the embedded aedes broker (MQTT 3.1.1 only) and a real Mosquitto (3.1.1 and 5).
describe.each([
  { broker: 'embedded aedes', external: false, versions: [4] as const },
  { broker: 'mosquitto', external: true, versions: [4, 5] as const },
])('serving over $broker', ({ external, versions }) => {
  let mosquitto: Mosquitto | undefined;
  let d: RunningDaemon;

  beforeAll(async () => {
    if (external) mosquitto = await startMosquitto();
    d = await startDaemon({ broker: mosquitto?.url, config: { serving: { maxPayloadBytes: 64 * 1024, maxRowsPerRequest: 64 } } });
  });
  afterAll(async () => {
    await d?.stop();
    await mosquitto?.stop();
  });

  it('publishes a retained online status listing the models', async () => {
    const c = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    const status = await new Promise<Record<string, any>>((resolve) => {
      c.on('message', (_t, p) => resolve(JSON.parse(p.toString())));
      void c.subscribeAsync(d.daemon.topics.status);
    });
    await c.endAsync();
    expect(status.online).toBe(true);
    expect(status.deviceId).toBe(d.deviceId);
    expect(status.models.map((m: { name: string }) => m.name).sort()).toEqual(expect.arrayContaining(MODELS));
    expect(status.models.find((m: { name: string }) => m.name === 'digits').quantization).toBe('int8');
  });

  for (const version of versions) {
    for (const model of MODELS) {
      it(`answers MQTT ${version === 5 ? '5' : '3.1.1'} JSON requests for ${model} correctly`, async () => {
        const client = await TestClient.connect(d.url, version);
        try {
          const reply = await client.request(d.infer(model), { inputs: digitsSample.rows });
          expect(reply.error).toBeUndefined();
          expect(reply.model).toBe(model);
          expect(reply.version).toBe('1.0.0');
          expect(reply.latencyMs).toBeGreaterThan(0);
          expect(reply.predictions!.map((p) => Number(p.label))).toEqual(digitsSample.labels);
          const p = reply.predictions![0];
          expect(p.index).toBe(digitsSample.labels[0]);
          expect(p.probabilities).toHaveLength(10);
          expect(p.probabilities!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
          expect(p.confidence).toBe(Math.max(...p.probabilities!));
          const single = await client.request(d.infer(model), { inputs: digitsSample.rows[3] });
          expect(single.predictions).toHaveLength(1);
          expect(Number(single.predictions![0].label)).toBe(digitsSample.labels[3]);
        } finally {
          await client.close();
        }
      });
    }
  }

  it('answers binary tensors framed with the ELT1 header (3.1.1)', async () => {
    const client = await TestClient.connect(d.url, 4);
    try {
      const data = Float32Array.from(digitsSample.rows.slice(0, 5).flat());
      const payload = encodeBinaryRequest(data, { dtype: 'float32', shape: [5, 64], id: 'bin-1', replyTo: client.replyTopic });
      const reply = await client.requestRaw(d.infer('digits'), payload, {}, { id: 'bin-1' });
      expect(reply.predictions!.map((p) => Number(p.label))).toEqual(digitsSample.labels.slice(0, 5));
      const bad = encodeBinaryRequest(Float32Array.from(digitsSample.rows[0]), { dtype: 'int32', id: 'bin-2', replyTo: client.replyTopic });
      expect((await client.requestRaw(d.infer('digits'), bad, {}, { id: 'bin-2' })).error?.code).toBe('EDGELOOP_BAD_DTYPE');
    } finally {
      await client.close();
    }
  });

  if (versions.includes(5 as never)) {
    it('answers raw binary tensors described by MQTT 5 user properties', async () => {
      const client = await TestClient.connect(d.url, 5);
      try {
        const data = Float32Array.from(digitsSample.rows.slice(0, 4).flat());
        const reply = await client.requestRaw(d.infer('digits-tfjs'), Buffer.from(data.buffer), {
          contentType: 'application/octet-stream',
          userProperties: { dtype: 'float32', shape: '4,64' },
        });
        expect(reply.predictions!.map((p) => Number(p.label))).toEqual(digitsSample.labels.slice(0, 4));
      } finally {
        await client.close();
      }
    });
  }

  it('answers requests without a reply address on the predictions topic', async () => {
    const c = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    try {
      const got = new Promise<Reply>((resolve) => c.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
      await c.subscribeAsync(`edgeloop/${d.deviceId}/predictions/digits`);
      await c.publishAsync(d.infer('digits'), JSON.stringify({ inputs: digitsSample.rows[1] }));
      const reply = await got;
      expect(Number(reply.predictions![0].label)).toBe(digitsSample.labels[1]);
    } finally {
      await c.endAsync();
    }
  });

  it('serves several concurrent clients, every reply matched to its request', async () => {
    const clients = await Promise.all(versions.flatMap((v) => [1, 2, 3].map(() => TestClient.connect(d.url, v))));
    try {
      const results = await Promise.all(
        clients.flatMap((c, ci) =>
          Array.from({ length: 60 }, (_, i) => {
            const k = (ci * 7 + i) % digitsSample.rows.length;
            return c.request(d.infer(MODELS[i % 3]), { inputs: digitsSample.rows[k] }).then((r) => ({ r, k }));
          }),
        ),
      );
      for (const { r, k } of results) expect(Number(r.predictions?.[0].label)).toBe(digitsSample.labels[k]);
      const stats = d.daemon.servedModels().get('digits')!.stats;
      expect(stats.rows / stats.batches).toBeGreaterThan(1); // concurrent requests were batched
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('gives every bad input its code while hundreds of valid requests interleaved all succeed', async () => {
    const client = await TestClient.connect(d.url, versions.at(-1)!);
    const row = digitsSample.rows[0];
    const bad: [string, () => Promise<Reply>][] = [
      // Unparseable JSON has no readable replyTo: only an MQTT 5 response topic can route its error.
      ['EDGELOOP_BAD_JSON', () => client.requestRaw(d.infer('digits'), '{"inputs": [1, 2')],
      ['EDGELOOP_BAD_SHAPE', () => client.request(d.infer('digits'), { inputs: row.slice(0, 63) })],
      ['EDGELOOP_BAD_DTYPE', () => client.request(d.infer('digits'), { inputs: row.map((v, i) => (i === 5 ? 'x' : v)) })],
      ['EDGELOOP_NON_FINITE', () => client.request(d.infer('digits'), { inputs: row.map((v, i) => (i === 5 ? null : v)) })],
      ['EDGELOOP_EMPTY_INPUT', () => client.request(d.infer('digits'), { inputs: [] })],
      ['EDGELOOP_BAD_INPUT', () => client.request(d.infer('digits'), { rows: [row] })],
      ['EDGELOOP_PAYLOAD_TOO_LARGE', () => client.request(d.infer('digits'), { inputs: Array.from({ length: 65 }, () => row) })],
      ['EDGELOOP_PAYLOAD_TOO_LARGE', () => client.request(d.infer('digits'), { inputs: row, pad: 'x'.repeat(70_000) })],
      ['EDGELOOP_MODEL_NOT_FOUND', () => client.request(d.infer('no-such-model'), { inputs: row })],
    ];
    try {
      const valid: Promise<Reply>[] = [];
      const refused: Promise<[string, Reply]>[] = [];
      for (let i = 0; i < 300; i++) {
        valid.push(client.request(d.infer(MODELS[i % 3]), { inputs: digitsSample.rows[i % digitsSample.rows.length] }));
        if (i % 10 === 0) {
          const [code, send] = bad[(i / 10) % bad.length];
          if (code !== 'EDGELOOP_BAD_JSON' || client.version === 5) refused.push(send().then((r) => [code, r]));
        }
      }
      for (const [code, reply] of await Promise.all(refused)) {
        expect(reply.error?.code, JSON.stringify(reply)).toBe(code);
        expect(reply.error?.message.length).toBeGreaterThan(5);
        expect(reply.predictions).toBeUndefined();
      }
      const replies = await Promise.all(valid);
      replies.forEach((r, i) => expect(Number(r.predictions?.[0].label)).toBe(digitsSample.labels[i % digitsSample.rows.length]));
    } finally {
      await client.close();
    }
  });
});

describe('queue limits and deadlines', () => {
  let d: RunningDaemon;
  beforeAll(async () => {
    d = await startDaemon({ config: { serving: { queueLimit: 4, maxDelayMs: 50, maxBatch: 1000, batchWindow: 'fixed' } } });
  });
  afterAll(() => d?.stop());

  it('answers EDGELOOP_BUSY at once when the queue is full, and serves the rest', async () => {
    const client = await TestClient.connect(d.url, 4);
    try {
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => client.request(d.infer('digits'), { inputs: digitsSample.rows[i % 20] })));
      const busy = replies.filter((r) => r.error?.code === 'EDGELOOP_BUSY').length;
      const ok = replies.filter((r) => r.predictions).length;
      expect(busy).toBeGreaterThan(0);
      expect(ok).toBeGreaterThanOrEqual(4);
      expect(busy + ok).toBe(40);
    } finally {
      await client.close();
    }
  });

  it('answers EDGELOOP_TIMEOUT when a request outlives its deadline in the queue', async () => {
    const client = await TestClient.connect(d.url, 4);
    try {
      const reply = await client.request(d.infer('digits'), { inputs: digitsSample.rows[0], timeoutMs: 5 });
      expect(reply.error?.code).toBe('EDGELOOP_TIMEOUT');
      const ok = await client.request(d.infer('digits'), { inputs: digitsSample.rows[0] });
      expect(Number(ok.predictions![0].label)).toBe(digitsSample.labels[0]);
    } finally {
      await client.close();
    }
  });
});
