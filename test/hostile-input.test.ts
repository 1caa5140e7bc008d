import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRequest } from '../src/transport/index.js';
import { replyTopicProblem, topicProblem } from '../src/transport/topics.js';
import { makeVersion } from './helpers/bundles.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { deeplyNested, digitsOnlyModels, listen, sleep } from './helpers/hostile.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const LIMITS = { maxPayloadBytes: 1024 * 1024, maxRowsPerRequest: 64 };
const DIGITS = [{ name: 'input', dtype: 'float32' as const, rowSize: 64 }];

describe('client input is bounded without recursion', () => {
  it('refuses 100,000 levels of nesting with EDGELOOP_BAD_SHAPE, not a stack overflow', () => {
    for (const body of [`{"inputs":${deeplyNested(100_000)}}`, `{"inputs":[${deeplyNested(100_000)}]}`, `{"inputs":[[${deeplyNested(40)}]]}`]) {
      const r = decodeRequest(Buffer.from(body), {}, DIGITS, LIMITS);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('EDGELOOP_BAD_SHAPE');
    }
  });

  it('still flattens nested rows of the right size, and counts rows that are too long', () => {
    const nested = [digitsSample.rows[0].slice(0, 32), digitsSample.rows[0].slice(32)];
    const ok = decodeRequest(Buffer.from(JSON.stringify({ inputs: [nested] })), {}, DIGITS, LIMITS);
    expect(ok.ok && Array.from(ok.feeds.input as Float32Array)).toEqual(digitsSample.rows[0].map((v) => Math.fround(v)));
    const long = decodeRequest(Buffer.from(JSON.stringify({ inputs: [[new Array(100).fill(1), new Array(100).fill(2)]] })), {}, DIGITS, LIMITS);
    expect(!long.ok && long.error.message).toBe(`'inputs[0]' must have 64 values per row, got 200`);
  });

  it('refuses deadlines below the floor, and non-finite ones', () => {
    for (const timeoutMs of [1e-9, 0, -5, 0.5]) {
      const r = decodeRequest(Buffer.from(JSON.stringify({ inputs: digitsSample.rows[0], timeoutMs })), {}, DIGITS, LIMITS);
      expect(!r.ok && r.error.code).toBe('EDGELOOP_BAD_INPUT');
    }
    const inf = decodeRequest(Buffer.from(`{"inputs":[1],"timeoutMs":1e999}`), {}, DIGITS, LIMITS);
    expect(!inf.ok && inf.error.code).toBe('EDGELOOP_BAD_INPUT');
  });
});

describe('topics the daemon publishes to', () => {
  it('refuses what a broker would disconnect for, and its own request space', () => {
    for (const t of ['', 'a\u0000b', 'a/+/b', 'a/#', 'x\u0085y', 'x\u001fy', 'x\uffffy', '\ud800', '$SYS/x', 'é'.repeat(40_000)]) expect(topicProblem(t), JSON.stringify(t.slice(0, 20))).toBeDefined();
    for (const t of ['edgeloop/dev/infer/digits', 'edgeloop/other/feedback/x', 'edgeloop/dev/status', 'edgeloop/dev/events/model']) expect(replyTopicProblem(t)).toMatch(/edgeloop's own/);
    for (const t of ['replies/é/1', 'edgeloop/dev/predictions/digits', 'a'.repeat(65_535)]) expect(replyTopicProblem(t)).toBeUndefined();
  });
});

describe('a version on trial survives hostile requests (embedded broker)', () => {
  let d: RunningDaemon;
  beforeAll(async () => {
    d = await startDaemon({ config: { modelsDir: digitsOnlyModels(), registry: { trial: { minInferences: 30, windowSeconds: 3600, maxErrorRate: 0.02 } } } });
    await d.daemon.registry!.install(await makeVersion('models/digits', '1.1.0'), { actor: 'cli', source: 'manual' });
    const change = await d.daemon.models.activate('digits', '1.1.0', { actor: 'cli', force: true });
    expect(change.action).toBe('activate-trial');
  });
  afterAll(async () => d?.stop());

  it('nesting bombs and absurd deadlines are the client’s: no failure counted, the trial commits', async () => {
    const client = await TestClient.connect(d.url, 4);
    try {
      const bomb = (id: string) => `{"id":"${id}","replyTo":"${client.replyTopic}","inputs":${deeplyNested(100_000)}}`;
      const bombs = await Promise.all([0, 1, 2].map(() => {
        const id = randomUUID();
        return client.requestRaw(d.infer('digits'), bomb(id), {}, { id });
      }));
      for (const r of bombs) expect(r.error?.code).toBe('EDGELOOP_BAD_SHAPE');
      const tiny = await Promise.all(Array.from({ length: 40 }, () => client.request(d.infer('digits'), { inputs: digitsSample.rows[0], timeoutMs: 1e-9 })));
      for (const r of tiny) expect(r.error?.code).toBe('EDGELOOP_BAD_INPUT');
      // 1 ms is allowed: whether it times out or not, it is the client's deadline.
      const short = await Promise.all(Array.from({ length: 40 }, () => client.request(d.infer('digits'), { inputs: digitsSample.rows[1], timeoutMs: 1 })));
      for (const r of short) expect(r.error === undefined || r.error.code === 'EDGELOOP_TIMEOUT').toBe(true);
      const model = d.daemon.servedModels().get('digits')!;
      expect(model.version).toBe('1.1.0');
      expect(model.health.failed).toBe(0);
      for (let i = 0; i < 30; i++) {
        const r = await client.request(d.infer('digits'), { inputs: digitsSample.rows[i % digitsSample.rows.length] });
        expect(r.version).toBe('1.1.0');
      }
      for (let i = 0; i < 50 && d.daemon.registry!.summary('digits').serving?.status === 'trial'; i++) await sleep(100);
      expect(d.daemon.registry!.summary('digits').serving).toMatchObject({ version: '1.1.0', status: 'active' });
    } finally {
      await client.close();
    }
  });

  it('a reply address inside the daemon’s own topics is refused once, on the predictions topic: no loop', async () => {
    const preds = await listen(d.url, d.daemon.topics.predictions('digits'));
    const requests = await listen(d.url, d.infer('digits'));
    const sender = await mqtt.connectAsync(d.url, { protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const id = randomUUID();
      await sender.publishAsync(d.infer('digits'), JSON.stringify({ id, replyTo: d.infer('digits'), inputs: digitsSample.rows[0] }), { qos: 1 });
      for (let i = 0; i < 50 && !preds.messages.some((m) => m.body.id === id); i++) await sleep(50);
      await sleep(300);
      const answers = preds.messages.filter((m) => m.body.id === id);
      expect(answers).toHaveLength(1);
      expect(answers[0].body.error.code).toBe('EDGELOOP_BAD_INPUT');
      expect(answers[0].body.error.message).toMatch(/'replyTo'.*edgeloop's own/);
      expect(requests.messages).toHaveLength(1); // the request itself, no reply published into the request space
    } finally {
      await sender.endAsync(true);
      await preds.close();
      await requests.close();
    }
  });
});

// Replies to these addresses would get the daemon disconnected by Mosquitto ("malformed packet").
const BAD_ADDRESSES = ['r/\u0000/x', 'r/\u0085', 'r/\uffff', 'r/\u001b[31m'];

describe.each([4, 5] as const)('bad reply addresses on Mosquitto, MQTT %s clients', (version) => {
  let mosquitto: Mosquitto;
  let d: RunningDaemon;
  beforeAll(async () => {
    mosquitto = await startMosquitto();
    d = await startDaemon({ broker: mosquitto.url, config: { modelsDir: digitsOnlyModels(), serving: { maxPayloadBytes: 4096 } } });
  });
  afterAll(async () => {
    await d?.stop();
    await mosquitto?.stop();
  });

  it('keeps the daemon connected and loses no valid request among oversized payloads with bad replyTo', async () => {
    const good = await TestClient.connect(mosquitto.url, version);
    const preds = await listen(mosquitto.url, d.daemon.topics.predictions('digits'));
    const bad = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const valid: Promise<unknown>[] = [];
      const badIds: string[] = [];
      for (let round = 0; round < 10; round++) {
        for (const address of BAD_ADDRESSES) {
          const id = randomUUID();
          badIds.push(id);
          // The raw address in the first kilobyte of an oversized payload (read by the envelope scan), and as JSON.
          const raw = Buffer.concat([Buffer.from(`{"id":"${id}","replyTo":"${address}","inputs":[`), Buffer.alloc(5000, 0x31), Buffer.from(']}')]);
          bad.publish(d.infer('digits'), raw, { qos: 1 });
          bad.publish(d.infer('digits'), JSON.stringify({ id: `${id}-json`, replyTo: address, inputs: digitsSample.rows[0] }), { qos: 1 });
        }
        for (let i = 0; i < 20; i++) valid.push(good.request(d.infer('digits'), { inputs: digitsSample.rows[i] }, { qos: 1 }));
        await sleep(20);
      }
      const replies = (await Promise.all(valid)) as { predictions?: { label: string }[] }[];
      replies.forEach((r, i) => expect(Number(r.predictions![0].label)).toBe(digitsSample.labels[i % 20]));
      expect(d.daemon['transport']!.connected).toBe(true);
      for (let i = 0; i < 50 && preds.messages.length < badIds.length * 2; i++) await sleep(50);
      // Answered where it can be: the model's predictions topic, with a client-error code.
      const codes = new Map(preds.messages.map((m) => [m.body.id, m.body.error?.code]));
      for (const id of badIds) {
        expect(codes.get(id)).toBe('EDGELOOP_PAYLOAD_TOO_LARGE');
        expect(codes.get(`${id}-json`)).toBe('EDGELOOP_BAD_INPUT');
      }
    } finally {
      await bad.endAsync(true);
      await good.close();
      await preds.close();
    }
  });
});
