import { prng } from '../src/training/data/split.js';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBinaryRequest } from './helpers/binary.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { deeplyNested, digitsOnlyModels, listen } from './helpers/hostile.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

/**
 * Fuzz: thousands of seeded hostile requests interleaved with valid ones, over MQTT 3.1.1
 * (embedded broker, replyTo + id in JSON) and MQTT 5 (Mosquitto, response topic + correlation
 * data). The valid ones must get exactly the predictions of a clean run; every hostile one a
 * documented client-error code, or nothing when it has no usable reply address; the daemon
 * must stay connected and never publish to a topic it must not.
 */

const CLIENT_ERRORS = new Set([
  'EDGELOOP_BAD_JSON', 'EDGELOOP_BAD_INPUT', 'EDGELOOP_BAD_SHAPE', 'EDGELOOP_BAD_DTYPE', 'EDGELOOP_NON_FINITE', 'EDGELOOP_EMPTY_INPUT',
  'EDGELOOP_PAYLOAD_TOO_LARGE', 'EDGELOOP_BAD_HEADER', 'EDGELOOP_MODEL_NOT_FOUND', 'EDGELOOP_BAD_LABEL', 'EDGELOOP_UNKNOWN_PREDICTION',
  'EDGELOOP_FEEDBACK_LIMITED', 'EDGELOOP_FEEDBACK_UNSUPPORTED',
]);
const MAX_PAYLOAD = 64 * 1024;
const HOSTILE = 1500;
const VALID = 150;


/**
 * A: answered exactly once at the client's address. B: answered once, at the client's address
 * or (address unreadable) on the predictions topic. C: invalid address: answered on the
 * predictions topic or not at all. F: feedback: at most one acknowledgement at the client's address.
 */
type Kind = 'A' | 'B' | 'C' | 'F';
interface Hostile {
  kind: Kind;
  /** 'infer' (digits), 'unknown' (another model name) or 'feedback'. */
  topic: string;
  payload: Buffer | string;
  /** MQTT 5: properties besides response topic + correlation data; responseTopic overrides ours. */
  props?: Record<string, unknown>;
}

function generator(seed: number, version: 4 | 5, replyTo: string, deviceId: string) {
  const r = prng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)];
  const row = () => digitsSample.rows[int(digitsSample.rows.length)];
  const badAddresses = ['a\u0000b', 'replies/+/x', '#', '$SYS/broker/x', `edgeloop/victim/infer/digits`, `edgeloop/victim/feedback/digits`, `edgeloop/${deviceId}/infer/digits`, `edgeloop/${deviceId}/status`, '', '\ud800x', 'x\u0085y', 'r'.repeat(70_000)];
  // MQTT 5 response topics Mosquitto itself accepts (it disconnects the sender for wildcards or NUL).
  const badResponseTopics = ['$SYS/broker/x', `edgeloop/victim/infer/digits`, `edgeloop/${deviceId}/infer/digits`, `edgeloop/victim/feedback/x`, `edgeloop/${deviceId}/events/model`];
  const wrongValues = [null, 'NaN', '1', true, {}, [], '∞', 1e308, -1e39, 'x'.repeat(100)];
  return (id: string): Hostile => {
    const env = version === 4 ? { id, replyTo } : {};
    const json = (body: Record<string, unknown>, kind: Kind = 'A', topic = 'infer'): Hostile => ({ kind, topic, payload: JSON.stringify({ ...env, ...body }) });
    switch (int(16)) {
      case 0: {
        const full = JSON.stringify({ ...env, inputs: row() });
        return { kind: 'B', topic: 'infer', payload: full.slice(0, 1 + int(full.length - 2)) };
      }
      case 1: {
        const bytes = Buffer.alloc(1 + int(300));
        for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
        return { kind: 'B', topic: 'infer', payload: bytes };
      }
      case 2:
        return { kind: 'A', topic: 'infer', payload: `{${version === 4 ? `"id":"${id}","replyTo":"${replyTo}",` : ''}"inputs":${deeplyNested(1000 + int(20_000))}}` };
      case 3:
        return json({ inputs: new Array(1000 + int(6000)).fill(0.5) });
      case 4: {
        const x: unknown[] = [...row()];
        x[int(64)] = pick(wrongValues);
        return json({ inputs: x });
      }
      case 5: {
        // NaN / Infinity are not JSON: raw text.
        const x = row().map(String);
        x[int(64)] = pick(['NaN', 'Infinity', '-Infinity', 'null', '"1"', '1e999']);
        return { kind: 'A', topic: 'infer', payload: `{${version === 4 ? `"id":"${id}","replyTo":"${replyTo}",` : ''}"inputs":[${x.join(',')}]}` };
      }
      case 6:
        return json(pick([{ inputs: [] }, { inputs: [[]] }, { inputs: 'abc' }, { inputs: { nope: [1] } }, { inputs: row(), timeoutMs: pick([1e-9, -1, 'soon', 0]) }, { inputs: row().slice(0, 63) }, {}, { inputs: [row(), row().slice(1)] }]));
      case 7: {
        // ELT1 frames with lying headers.
        const data = new Float32Array(row());
        const header = version === 4 ? { id, replyTo } : {};
        const v = int(5);
        if (v === 0) {
          const b = encodeBinaryRequest(data, { ...header, dtype: 'float32', shape: [1, 64] });
          b.writeUInt32LE(0xfffffff0, 4);
          return { kind: 'B', topic: 'infer', payload: b };
        }
        if (v === 1) {
          const b = Buffer.concat([Buffer.from('ELT1'), Buffer.from([5, 0, 0, 0]), Buffer.from('{"a":'), Buffer.from(data.buffer)]);
          return { kind: 'B', topic: 'infer', payload: b };
        }
        const lie = pick([{ dtype: 'float64', shape: [1, 64] }, { dtype: 'float32', shape: [2, 64] }, { dtype: 'float32', shape: [1, -64] }, { dtype: 'int8' }, { dtype: 'float32', shape: [1e12, 64] }, { dtype: 'float32', shape: 'x' }, { dtype: 7 }]);
        const body = encodeBinaryRequest(v === 4 ? data.subarray(0, 63) : data, { ...header, ...lie });
        return { kind: 'A', topic: 'infer', payload: body };
      }
      case 8: {
        // Oversized, with the reply address at the end (a 3.1.1 client has no other).
        const bad = r() < 0.3;
        const tail = version === 4 ? `,"id":"${id}","replyTo":${JSON.stringify(bad ? pick(badAddresses.slice(0, 4)) : replyTo)}}` : '}';
        const payload = `{"inputs":[${'0.5,'.repeat(MAX_PAYLOAD / 4)}0.5]${tail}`;
        return { kind: version === 4 && bad ? 'C' : 'A', topic: 'infer', payload };
      }
      case 9: {
        // Bad reply address.
        if (version === 4) return { kind: 'C', topic: 'infer', payload: JSON.stringify({ id, replyTo: pick(badAddresses), inputs: row() }) };
        return { kind: 'C', topic: 'infer', payload: JSON.stringify({ inputs: row() }), props: { responseTopic: pick(badResponseTopics) } };
      }
      case 10:
        return json({ inputs: row() }, 'A', pick(['nope', '__proto__', 'constructor', 'toString', 'é', 'digits ', 'DIGITS']));
      case 11: {
        if (version === 4) return json({ inputs: Buffer.from(new Float32Array(row()).buffer).toString('base64'), dtype: 'float32', shape: [1, 64] });
        const props = pick([
          { contentType: 'application/octet-stream', userProperties: { dtype: pick(['float64', 'float32', '', 'x']), shape: pick(['[1,64]', '[abc]', '1,2', '[1e9,64]', '[-1]']) } },
          { userProperties: { dtype: 'float32' } },
          { userProperties: { shape: '[2,32]', x: ['a', 'b'], dtype: ['float32', 'int8'] } },
          { contentType: 'application/x-edgeloop-tensor' },
        ]);
        const data = new Float32Array(row());
        return { kind: 'A', topic: 'infer', payload: Buffer.from(data.buffer).subarray(0, 1 + int(255)), props };
      }
      case 12:
      case 13: {
        // OIP v2 tensors with lying shapes / datatypes.
        const t = pick([
          { name: 'input', shape: [1, 65], datatype: 'FP32', data: row() },
          { name: 'input', shape: [1e9, 64], datatype: 'FP32', data: row() },
          { name: 'input', shape: [-1, 64], datatype: 'FP32', data: row() },
          { name: 'input', shape: [1, 64], datatype: pick(['FP64', 'BYTES', 'XYZ', 'INT8', 7]), data: row() },
          { name: 'input', shape: [1, 64], datatype: 'FP32', data: row().map(String) },
          { name: 'input', shape: [1, 64], datatype: 'FP32', data: [...row().slice(1), null] },
          { name: 'nope', shape: [1, 64], datatype: 'FP32', data: row() },
          { name: 'input', shape: 'x', datatype: 'FP32', data: row() },
          { name: 'input', shape: [1, 64], datatype: 'FP32' },
          { name: 'input', shape: [1, 64], datatype: 'FP32', parameters: { binary_data_size: 1e9 } },
        ]);
        return json({ inputs: [t], ...(int(3) === 0 ? { outputs: [{ name: pick(['nope', 7, '__proto__']) }] } : {}) });
      }
      default: {
        // Junk feedback.
        const f = pick<unknown>([
          { predictionId: 'nope', label: 3 },
          { predictionId: 7, label: 'x' },
          { inputs: row(), label: 99 },
          { inputs: [row()], labels: [1, 2] },
          { inputs: deeplyNested(5000), label: 1 },
          { labels: [{ predictionId: null, label: -1 }] },
          { inputs: row().slice(3), label: 1 },
          { inputs: row(), label: 'NaN' },
          'garbage',
        ]);
        const payload = typeof f === 'string' || (typeof f === 'object' && f && typeof (f as { inputs?: unknown }).inputs === 'string') ? `{"id":"${id}","replyTo":"${replyTo}","inputs":${deeplyNested(5000)},"label":1` : JSON.stringify({ ...env, ...(f as object) });
        return { kind: 'F', topic: 'feedback', payload };
      }
    }
  };
}

type Reply = { id?: string; error?: { code: string }; predictions?: Record<string, unknown>[]; model?: string };

describe.each([
  { name: 'MQTT 3.1.1 on the embedded broker', version: 4 as const, external: false, seed: 12 },
  { name: 'MQTT 5 on Mosquitto', version: 5 as const, external: true, seed: 1212 },
])('fuzz: $name', ({ version, external, seed }) => {
  let mosquitto: Mosquitto | undefined;
  let d: RunningDaemon;
  let client: MqttClient;
  const replyTopic = `fuzz/replies/${seed}`;
  const replies = new Map<string, Reply[]>();

  beforeAll(async () => {
    if (external) mosquitto = await startMosquitto();
    d = await startDaemon({ broker: mosquitto?.url, config: { modelsDir: digitsOnlyModels(), serving: { maxPayloadBytes: MAX_PAYLOAD, maxRowsPerRequest: 64 } } });
    client = await mqtt.connectAsync(d.url, { protocolVersion: version, reconnectPeriod: 0 });
    client.on('message', (_t, payload, packet) => {
      const body = JSON.parse(payload.toString()) as Reply;
      const key = packet.properties?.correlationData?.toString() ?? String(body.id);
      const list = replies.get(key) ?? [];
      list.push(body);
      replies.set(key, list);
    });
    await client.subscribeAsync(replyTopic, { qos: 1 });
  });
  afterAll(async () => {
    await client?.endAsync(true);
    await d?.stop();
    await mosquitto?.stop();
  });

  const send = (topic: string, id: string, payload: Buffer | string, props: Record<string, unknown> = {}) =>
    new Promise<void>((resolve, reject) =>
      client.publish(topic, payload, { qos: 1, properties: version === 5 ? { responseTopic: replyTopic, correlationData: Buffer.from(id), ...props } : undefined }, (err) => (err ? reject(err) : resolve())),
    );
  const validPayload = (i: number, id: string) => JSON.stringify(version === 4 ? { id, replyTo: replyTopic, inputs: digitsSample.rows[i % digitsSample.rows.length] } : { inputs: digitsSample.rows[i % digitsSample.rows.length] });
  const strip = (r: Reply | undefined) => r?.predictions?.map(({ predictionId: _p, ...rest }) => rest);
  const until = async (done: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!done() && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
  };

  it(`${HOSTILE} hostile requests interleaved with ${VALID} valid ones: no crash, no valid request lost or changed, every hostile one a client error`, async () => {
    // Clean run: the valid requests alone.
    const clean: string[] = [];
    for (let i = 0; i < VALID; i++) {
      const id = `clean-${i}`;
      clean.push(id);
      await send(d.infer('digits'), id, validPayload(i, id));
    }
    await until(() => clean.every((id) => replies.has(id)), 10_000);
    for (const id of clean) expect(replies.get(id)?.[0]?.predictions, id).toBeDefined();

    const predictions = await listen(d.url, `edgeloop/${d.deviceId}/predictions/#`, version);
    const forbidden = await listen(d.url, `edgeloop/victim/#`, version);
    const ownInfer = await listen(d.url, `edgeloop/${d.deviceId}/infer/#`, version);
    const status = await listen(d.url, `edgeloop/${d.deviceId}/status`, version);
    const sysTap = external ? await listen(d.url, '$SYS/broker/x', version) : undefined;
    // The daemon's MQTT connection (private): a restart or a new connection would replace it.
    const transportOf = () => (d.daemon as unknown as { transport?: { connected: boolean } }).transport;
    const daemonStarted = transportOf();
    const next = generator(seed, version, replyTopic, d.deviceId);
    const hostile = new Map<string, Hostile>();
    const sends: Promise<void>[] = [];
    let sentToOwnInfer = 0;
    for (let i = 0, v = 0; i < HOSTILE; i++) {
      const id = `h-${i}`;
      const h = next(id);
      hostile.set(id, h);
      const topic = h.topic === 'infer' ? d.infer('digits') : h.topic === 'feedback' ? `edgeloop/${d.deviceId}/feedback/digits` : d.infer(h.topic);
      if (topic.startsWith(`edgeloop/${d.deviceId}/infer/`)) sentToOwnInfer++;
      sends.push(send(topic, id, h.payload, h.props));
      if (i % (HOSTILE / VALID) === 0 && v < VALID) {
        const vid = `valid-${v}`;
        sends.push(send(d.infer('digits'), vid, validPayload(v++, vid)));
        sentToOwnInfer++;
      }
      if (i % 100 === 99) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    const addressed = [...hostile.entries()].filter(([, h]) => h.kind === 'A').map(([id]) => id);
    await until(() => addressed.every((id) => replies.has(id)) && [...Array(VALID).keys()].every((v) => replies.has(`valid-${v}`)), 15_000);
    // What can still arrive (B / C on the predictions topic) arrives within this quiet spell.
    await new Promise((res) => setTimeout(res, 300));

    // Valid requests: none lost, predictions identical to the clean run.
    for (let v = 0; v < VALID; v++) {
      const got = replies.get(`valid-${v}`);
      expect(got?.length, `valid-${v}`).toBe(1);
      expect(got![0].error, `valid-${v}`).toBeUndefined();
      expect(strip(got![0])).toEqual(strip(replies.get(`clean-${v}`)![0]));
    }
    // Hostile requests: documented client errors only, each answered at most once.
    const counts: Record<Kind, number> = { A: 0, B: 0, C: 0, F: 0 };
    let answeredB = 0;
    for (const [id, h] of hostile) {
      counts[h.kind]++;
      const got = replies.get(id) ?? [];
      expect(got.length, `${id} (${h.kind}) answered ${got.length} times`).toBeLessThanOrEqual(1);
      for (const r of got) expect(CLIENT_ERRORS.has(r.error?.code ?? 'OK'), `${id} (${h.kind}) ${String(h.payload).slice(0, 200)} ${JSON.stringify(h.props)}: ${JSON.stringify(r).slice(0, 300)}`).toBe(true);
      if (h.kind === 'A') expect(got.length, `${id} unanswered: ${String(h.payload).slice(0, 120)}`).toBe(1);
      if (h.kind === 'B') answeredB += got.length;
      if (h.kind === 'C') expect(got.length, id).toBe(0);
    }
    for (const k of ['A', 'B', 'C', 'F'] as const) expect(counts[k], k).toBeGreaterThan(30);
    // Unaddressed errors land on the predictions topic: exactly the B ones not answered at their address, plus some C ones.
    for (const m of predictions.messages) expect(CLIENT_ERRORS.has(m.body.error?.code), JSON.stringify(m.body).slice(0, 200)).toBe(true);
    expect(predictions.messages.length).toBeGreaterThanOrEqual(counts.B - answeredB);
    expect(predictions.messages.length).toBeLessThanOrEqual(counts.B - answeredB + counts.C);
    // Nothing published where it must not be: other devices, the daemon's own request space, $SYS.
    expect(forbidden.messages).toEqual([]);
    expect(ownInfer.messages.length).toBe(sentToOwnInfer);
    expect(sysTap?.messages ?? []).toEqual([]);
    // Still the same daemon, connected all along (a broker disconnect would publish the Will's offline status).
    expect(transportOf()).toBe(daemonStarted);
    expect(transportOf()?.connected).toBe(true);
    for (const m of status.messages) expect(JSON.stringify(m.body)).not.toMatch(/offline/);
    const after = `after-${seed}`;
    await send(d.infer('digits'), after, validPayload(0, after));
    await until(() => replies.has(after), 5000);
    expect(strip(replies.get(after)?.[0])).toEqual(strip(replies.get('clean-0')![0]));
    for (const l of [predictions, forbidden, ownInfer, status]) await l.close();
    await sysTap?.close();
  }, 30_000);
});
