import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classificationMetrics } from '../src/training/metrics/index.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

type Ack = { accepted?: number; duplicates?: number; id?: string; model?: string; error?: { code: string; message: string } };

/** Seeded generator: the same messages every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const N = 1000;

describe.each([
  { broker: 'embedded aedes', external: false, version: 4 as const },
  { broker: 'mosquitto', external: true, version: 5 as const },
])('feedback over $broker', ({ external, version }) => {
  let mosquitto: Mosquitto | undefined;
  let d: RunningDaemon;
  let client: TestClient;
  const fb = (model: string) => `edgeloop/${d.deviceId}/feedback/${model}`;
  const send = (model: string, body: Record<string, unknown>) => client.request(fb(model), body) as Promise<Ack>;

  beforeAll(async () => {
    if (external) mosquitto = await startMosquitto();
    d = await startDaemon({
      broker: mosquitto?.url,
      config: { serving: { maxRowsPerRequest: 64 }, feedback: { flushIntervalMs: 50, liveRows: 5000, burst: 3000, ratePerSecond: 1, alert: { minRows: 50, drop: 0.1, clearDrop: 0.05 } } },
    });
    client = await TestClient.connect(d.url, version);
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
    await mosquitto?.stop();
  });

  it(`${N} feedback messages (by id and self-contained) give exactly the offline accuracy of the same predictions`, async () => {
    const random = rng(7);
    const rows = Array.from({ length: N }, (_, i) => digitsSample.rows[i % digitsSample.rows.length].map((v) => Math.min(16, Math.max(0, v + Math.round((random() - 0.5) * 6)))));
    const replies = await Promise.all(rows.map((r) => client.request(d.infer('digits'), { inputs: r })));
    expect(replies.every((r) => !r.error && typeof (r as { predictionId?: string }).predictionId === 'string')).toBe(true);
    const ids = replies.map((r) => (r as { predictionId: string }).predictionId);
    expect(new Set(ids).size).toBe(N);
    expect(replies[0].predictions![0]).toHaveProperty('predictionId', ids[0]);
    const predicted = replies.map((r) => r.predictions![0].index!);
    // Labels: mostly the sample's true class, a third of them a random class, so accuracy is far from 1.
    const events = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    await events.subscribeAsync(`edgeloop/${d.deviceId}/events/accuracy`);
    const alerted = new Promise<Record<string, unknown>>((resolve) => events.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
    const labels = rows.map((_, i) => (random() < 0.33 ? Math.floor(random() * 10) : digitsSample.labels[i % digitsSample.labels.length]));
    const acks = await Promise.all(
      rows.map((r, i) =>
        i % 2 === 0
          ? send('digits', { predictionId: ids[i], label: i % 4 === 0 ? String(labels[i]) : labels[i] })
          : i % 10 === 1
            ? send('digits', { inputs: [r], labels: [String(labels[i])] })
            : send('digits', { inputs: r, label: String(labels[i]) }),
      ),
    );
    expect(acks.filter((a) => a.accepted === 1).length).toBe(N);
    await d.daemon.feedback!.flush();
    const live = d.daemon.feedback!.liveAccuracy('digits')!;
    const offline = classificationMetrics(labels.map(String), predicted.map(String), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(live.rows).toBe(N);
    expect(live.accuracy).toBe(offline.accuracy);
    expect(live.macroF1).toBeCloseTo(offline.macro.f1, 12);
    expect(live.accuracy).toBeLessThan(0.85);
    expect(live.testAccuracy).toBeGreaterThan(0.9);
    const stored = d.daemon.feedback!.store.rows('digits');
    expect(stored.rows).toBe(N);
    // Raw inputs are kept, not the standardised values the engine saw.
    const byId = new Map(stored.ids.map((_, j) => [j, Array.from(stored.x.subarray(j * 64, (j + 1) * 64))]));
    expect([...byId.values()].every((row) => row.every((v) => Number.isInteger(v) && v >= 0 && v <= 16))).toBe(true);
    // Accuracy this far below the bundle's test accuracy raises an alert, in the status too.
    expect(d.daemon.feedback!.alertFor('digits')?.version).toBe('1.0.0');
    const status = d.daemon.status().models as { name: string; liveAccuracy: { accuracy: number; rows: number; alert: unknown } | null }[];
    const entry = status.find((m) => m.name === 'digits')!;
    expect(entry.liveAccuracy).toMatchObject({ rows: N, accuracy: offline.accuracy });
    expect(entry.liveAccuracy!.alert).not.toBeNull();
    expect(await alerted).toMatchObject({ type: 'accuracy-alert', model: 'digits', version: '1.0.0', deviceId: d.deviceId });
    await events.endAsync();
  });

  it('answers unknown ids, bad labels and bad shapes with their codes, whole messages or nothing', async () => {
    const reply = await client.request(d.infer('digits-fp32'), { inputs: digitsSample.rows[0] });
    const id = (reply as { predictionId: string }).predictionId;
    const before = d.daemon.feedback!.store.rows('digits-fp32').rows;
    const code = async (model: string, body: Record<string, unknown>) => (await send(model, body)).error?.code;
    expect(await code('digits-fp32', { predictionId: 'nope-1', label: '3' })).toBe('EDGELOOP_UNKNOWN_PREDICTION');
    expect(await code('digits-fp32', { predictionId: `${id.split('-')[0]}-zzzzz`, label: '3' })).toBe('EDGELOOP_UNKNOWN_PREDICTION');
    // An id of another model is not this model's.
    expect(await code('digits-tfjs', { predictionId: id, label: '3' })).toBe('EDGELOOP_UNKNOWN_PREDICTION');
    expect(await code('digits-fp32', { predictionId: id, label: 'seven' })).toBe('EDGELOOP_BAD_LABEL');
    expect(await code('digits-fp32', { predictionId: id, label: 10 })).toBe('EDGELOOP_BAD_LABEL');
    expect(await code('digits-fp32', { predictionId: id })).toBe('EDGELOOP_BAD_LABEL');
    expect(await code('digits-fp32', { inputs: digitsSample.rows[0].slice(1), label: '3' })).toBe('EDGELOOP_BAD_SHAPE');
    expect(await code('digits-fp32', { inputs: [digitsSample.rows[0], digitsSample.rows[1]], labels: ['3'] })).toBe('EDGELOOP_BAD_SHAPE');
    expect(await code('digits-fp32', { inputs: [...digitsSample.rows[0].slice(1), null], label: '3' })).toBe('EDGELOOP_NON_FINITE');
    expect(await code('digits-fp32', { inputs: Array.from({ length: 65 }, () => digitsSample.rows[0]), labels: Array(65).fill('1') })).toBe('EDGELOOP_PAYLOAD_TOO_LARGE');
    expect(await code('no-such-model', { predictionId: id, label: '3' })).toBe('EDGELOOP_MODEL_NOT_FOUND');
    expect(await code('digits-fp32', { label: '3' })).toBe('EDGELOOP_BAD_INPUT');
    // One unknown id refuses the whole batch: the valid id in it is still unclaimed afterwards.
    expect(await code('digits-fp32', { items: [{ predictionId: id, label: '0' }, { predictionId: 'nope-2', label: '1' }] })).toBe('EDGELOOP_UNKNOWN_PREDICTION');
    expect(await send('digits-fp32', { items: [{ predictionId: id, label: 0 }] })).toMatchObject({ accepted: 1 });
    expect(await send('digits-fp32', { predictionId: id, label: 0 })).toMatchObject({ accepted: 0, duplicates: 1 });
    await d.daemon.feedback!.flush();
    const after = d.daemon.feedback!.store.rows('digits-fp32');
    expect(after.rows).toBe(before + 1);
    expect(after.y[0]).toBe(0);
    expect(after.predicted[0]).toBe(digitsSample.labels[0]);
    const refused = d.daemon.feedback!.status().models.find((m) => m.model === 'digits-fp32')!.refused;
    expect(refused.EDGELOOP_UNKNOWN_PREDICTION).toBe(3);
  });

  it('refuses a flood with EDGELOOP_FEEDBACK_LIMITED and stores every row it accepted', async () => {
    const model = 'digits-tfjs';
    const before = d.daemon.feedback!.store.rows(model).rows;
    const msg = { inputs: Array.from({ length: 64 }, (_, i) => digitsSample.rows[i % 20]), labels: Array.from({ length: 64 }, (_, i) => String(digitsSample.labels[i % 20])) };
    // Burst 3000 rows, 1 row/s: 80 messages of 64 rows = 5120 rows, about 46 fit.
    const acks = await Promise.all(Array.from({ length: 80 }, () => send(model, msg)));
    const accepted = acks.reduce((a, x) => a + (x.accepted ?? 0), 0);
    const limited = acks.filter((x) => x.error?.code === 'EDGELOOP_FEEDBACK_LIMITED').length;
    expect(limited).toBeGreaterThan(0);
    expect(accepted + limited * 64).toBe(80 * 64);
    expect(accepted).toBeLessThanOrEqual(3000 + 64);
    await d.daemon.feedback!.flush();
    const stored = d.daemon.feedback!.store.rows(model);
    expect(stored.rows - before).toBe(accepted);
    // Self-contained rows were predicted by the serving version after they were accepted.
    expect(Array.from(stored.predicted.subarray(0, 20)).every((p) => Number.isInteger(p))).toBe(true);
    expect(stored.versions[0]).toBe('1.0.0');
  });

  it('takes regression values by id and as samples, and reports MAE and RMSE', async () => {
    const x = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02];
    const r = (await client.request(d.infer('diabetes'), { inputs: x })) as { predictionId: string; predictions: { value: number }[] };
    const p = r.predictions[0].value;
    expect((await send('diabetes', { predictionId: r.predictionId, value: 'high' })).error?.code).toBe('EDGELOOP_BAD_LABEL');
    expect(await send('diabetes', { predictionId: r.predictionId, value: p + 10 })).toMatchObject({ accepted: 1 });
    expect(await send('diabetes', { inputs: x, value: p - 20 })).toMatchObject({ accepted: 1 });
    await d.daemon.feedback!.flush();
    const live = d.daemon.feedback!.liveAccuracy('diabetes')!;
    expect(live).toMatchObject({ task: 'regression', rows: 2 });
    expect(live.mae).toBeCloseTo(15, 3);
    expect(live.rmse).toBeCloseTo(Math.sqrt((100 + 400) / 2), 3);
    expect(live.accuracy).toBeUndefined();
  });

  it('acknowledges to JSON replyTo/id on MQTT 3.1.1', async () => {
    const c = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    try {
      const replyTo = `test/fb/${Math.random().toString(36).slice(2)}`;
      await c.subscribeAsync(replyTo);
      const got = new Promise<Ack>((resolve) => c.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
      await c.publishAsync(fb('digits'), JSON.stringify({ id: 'a-1', replyTo, inputs: digitsSample.rows[2], label: String(digitsSample.labels[2]) }));
      expect(await got).toMatchObject({ id: 'a-1', accepted: 1, model: 'digits' });
    } finally {
      await c.endAsync();
    }
  });
});
