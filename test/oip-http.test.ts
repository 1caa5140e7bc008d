import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { oipFrame, readReply, type OipReply } from './helpers/oip-client.js';
import { fromHalf, toHalf, fromValues, toValues } from '../src/tensor/index.js';

const argmax = (xs: number[]) => xs.reduce((b, x, i) => (x > xs[b] ? i : b), 0);

describe('OIP v2 tensors and /predict on the digits bundles', () => {
  let d: RunningDaemon;
  let url: string;
  let client: TestClient;
  beforeAll(async () => {
    d = await startDaemon({ config: { http: { port: 0 }, serving: { maxPayloadBytes: 64 * 1024 } } });
    url = d.daemon.http!.url;
    client = await TestClient.connect(d.url, 4);
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });

  const rows = digitsSample.rows.slice(0, 5);
  const tensor = { name: 'input', datatype: 'FP32', shape: [rows.length, 64], data: rows.flat() };
  const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });

  for (const model of ['digits', 'digits-tfjs']) {
    it(`${model}: the same predictions over MQTT rows, MQTT OIP (JSON and binary), HTTP OIP and /predict`, async () => {
      const input = (await (await fetch(`${url}/v2/models/${model}`)).json()) as { inputs: { name: string }[]; outputs: { name: string }[] };
      const t = { ...tensor, name: input.inputs[0].name };
      const expected = digitsSample.labels.slice(0, 5);
      const mqttRows = await client.request(d.infer(model), { inputs: rows });
      expect(mqttRows.predictions!.map((p) => Number(p.label))).toEqual(expected);
      const labelsOf = (r: OipReply) => {
        const out = r.outputs![0];
        return Array.from({ length: out.shape[0] }, (_, i) => argmax(out.data.slice(i * out.shape[1], (i + 1) * out.shape[1]) as number[]));
      };
      const mqttOip = (await client.request(d.infer(model), { inputs: [t] })) as unknown as OipReply;
      expect(mqttOip.error).toBeUndefined();
      expect(labelsOf(mqttOip)).toEqual(expected);
      // Its own client: TestClient reads every reply as JSON, and this one is an OIP1 frame.
      const raw = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
      const replyTo = `test/oip-bin/${model}`;
      await raw.subscribeAsync(replyTo);
      const bin = await new Promise<OipReply>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no binary reply')), 10_000);
        raw.on('message', (_t, p) => {
          clearTimeout(timer);
          expect(p.subarray(0, 4).toString('latin1')).toBe('OIP1');
          resolve(readReply(p));
        });
        raw.publish(d.infer(model), oipFrame([{ name: t.name, dtype: 'float32', shape: t.shape, data: Float32Array.from(t.data) }], { id: 'bin-digits', replyTo }));
      });
      await raw.endAsync();
      expect(labelsOf(bin)).toEqual(expected);
      const http = (await (await post(`/v2/models/${model}/infer`, { id: 'h1', inputs: [t] })).json()) as OipReply & { model_name: string; id: string };
      expect(http).toMatchObject({ model_name: model, id: 'h1' });
      expect(labelsOf(http)).toEqual(expected);
      const flask = (await (await post(`/predict?model=${model}`, { features: rows })).json()) as { prediction: string[]; confidence: number[] };
      expect(flask.prediction.map(Number)).toEqual(expected);
      const one = (await (await post(`/predict?model=${model}`, { features: rows[1] })).json()) as { prediction: string; probabilities: number[] };
      expect(Number(one.prediction)).toBe(expected[1]);
      expect(one.probabilities).toHaveLength(10);
    });
  }

  it('answers GET /v2, model metadata and readiness', async () => {
    expect(await (await fetch(`${url}/v2`)).json()).toMatchObject({ name: 'edgeloop', extensions: ['binary_tensor_data'] });
    const meta = (await (await fetch(`${url}/v2/models/digits/versions/1.0.0`)).json()) as { inputs: { datatype: string; shape: number[] }[] };
    expect(meta.inputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, 64] });
    expect((await fetch(`${url}/v2/models/digits/ready`)).status).toBe(200);
    expect((await fetch(`${url}/v2/models/digits/versions/9.9.9`)).status).toBe(404);
  });

  it('refuses bad input over HTTP with its code and status, and keeps serving', async () => {
    const cases: [string, unknown, string, number][] = [
      ['/v2/models/digits/infer', { inputs: [{ ...tensor, datatype: 'INT32' }] }, 'EDGELOOP_BAD_DTYPE', 400],
      ['/v2/models/digits/infer', { inputs: [{ ...tensor, shape: [5, 63] }] }, 'EDGELOOP_BAD_SHAPE', 400],
      ['/v2/models/digits/infer', { inputs: [{ ...tensor, datatype: 'FP99' }] }, 'EDGELOOP_BAD_DTYPE', 400],
      ['/v2/models/digits/infer', { inputs: [tensor], outputs: [{ name: 'nope' }] }, 'EDGELOOP_BAD_INPUT', 400],
      ['/v2/models/nope/infer', { inputs: [tensor] }, 'EDGELOOP_MODEL_NOT_FOUND', 404],
      ['/v2/models/digits/infer', '{"inputs": [', 'EDGELOOP_BAD_JSON', 400],
      ['/v2/models/digits/infer', { inputs: [{ ...tensor, data: new Array(70_000).fill(0) }] }, 'EDGELOOP_PAYLOAD_TOO_LARGE', 413],
      ['/predict?model=digits', { features: [1, 2] }, 'EDGELOOP_BAD_SHAPE', 400],
      ['/predict?model=digits', { features: [] }, 'EDGELOOP_EMPTY_INPUT', 400],
      ['/predict', { features: rows[0] }, 'EDGELOOP_BAD_INPUT', 400],
    ];
    for (const [path, body, code, status] of cases) {
      const res = await post(path, body);
      expect([path, res.status]).toEqual([path, status]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    // Binary body whose byte length does not match its header.
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], parameters: { binary_data_size: 10 } }] }));
    const res = await fetch(`${url}/v2/models/digits/infer`, { method: 'POST', body: Buffer.concat([head, Buffer.alloc(10)]), headers: { 'inference-header-content-length': String(head.length) } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EDGELOOP_BAD_SHAPE');
    const ok = await post('/predict?model=digits', { features: rows[0] });
    expect(ok.status).toBe(200);
  });
});

describe('OIP JSON encoding of values JSON cannot carry', () => {
  it('round-trips NaN, ±Infinity, int64 beyond 2^53, bool and float16', () => {
    expect(toValues('float32', Float32Array.from([NaN, Infinity, -Infinity, 1.5]))).toEqual(['NaN', 'Infinity', '-Infinity', 1.5]);
    expect(Array.from(fromValues(['NaN', 'Infinity', '-Infinity', 2], 'float64', 'x') as Float64Array)).toEqual([NaN, Infinity, -Infinity, 2]);
    const big = fromValues(['9007199254740993', -5, '-9223372036854775808'], 'int64', 'x') as BigInt64Array;
    expect(Array.from(big)).toEqual([9007199254740993n, -5n, -9223372036854775808n]);
    expect(toValues('int64', big)).toEqual(['9007199254740993', -5, '-9223372036854775808']);
    expect(toValues('uint64', BigUint64Array.from([18446744073709551615n]))).toEqual(['18446744073709551615']);
    expect(toValues('bool', fromValues([true, false, 1], 'bool', 'x'))).toEqual([true, false, true]);
    for (const v of [0, 1, -2.5, 65504, 0.0001, 1e-7]) expect(fromHalf(toHalf(v))).toBeCloseTo(v, 3);
    expect(fromHalf(toHalf(Infinity))).toBe(Infinity);
    expect(() => fromValues([300], 'uint8', 'x')).toThrow(/0\.\.255/);
    expect(() => fromValues([1.5], 'int32', 'x')).toThrow(/integer/);
  });
});
