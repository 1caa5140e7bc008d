import { copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toValues } from '../src/tensor/index.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { oipFrame, oipJson, readReply, type OipReply } from './helpers/oip-client.js';
import { caseNames, loadCase, sameValues, testdataInstalled, type OnnxCase } from './helpers/onnx-testdata.js';

ort.env.logLevel = 'fatal';

/** What ONNX Runtime alone answers on a case (undefined: it passes), the reference for the daemon. */
async function ortAlone(c: OnnxCase): Promise<string | undefined> {
  try {
    const s = await ort.InferenceSession.create(c.model, { logSeverityLevel: 4 });
    try {
      const feeds = Object.fromEntries(c.inputs.map((t) => [t.name, new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.shape)]));
      const out = await s.run(feeds);
      for (const e of c.outputs) {
        const got = out[e.name];
        const problem = got ? sameValues(e, got.type, got.dims, toValues(got.type as never, got.data as never)) : 'missing';
        if (problem) return problem;
      }
      return undefined;
    } finally {
      await s.release();
    }
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

/** About 100 cases: every case ORT alone passes, taken at an even stride, plus all of each rare datatype. */
async function sample(target: number): Promise<OnnxCase[]> {
  const names = caseNames();
  const stride = Math.max(1, Math.floor(names.length / (target * 1.6)));
  const picked: OnnxCase[] = [];
  const rare = /bool|float16|fp16|uint16|int16|uint64|string|cast|scalar|equal|not|and|or|xor/;
  for (let i = 0; i < names.length && picked.length < target; i++) {
    if (i % stride !== 0 && !(rare.test(names[i]) && picked.length < target && i % 3 === 0)) continue;
    const c = loadCase(names[i]);
    if (!c || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(c.name)) continue;
    if ((await ortAlone(c)) === undefined) picked.push(c);
  }
  return picked;
}

function compare(c: OnnxCase, reply: OipReply): string | undefined {
  if (reply.error) return `${reply.error.code}: ${reply.error.message}`;
  for (const e of c.outputs) {
    const o = reply.outputs?.find((x) => x.name === e.name);
    if (!o) return `output ${e.name} missing`;
    const dtype = { BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64', INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64', FP16: 'float16', FP32: 'float32', FP64: 'float64', BYTES: 'string' }[o.datatype];
    const problem = sameValues(e, dtype ?? o.datatype, o.shape, o.data);
    if (problem) return `${e.name}: ${problem}`;
  }
  return undefined;
}

describe.skipIf(!testdataInstalled())('ONNX backend node tests as bare models through the daemon (OIP v2)', () => {
  let d: RunningDaemon;
  let cases: OnnxCase[];
  let client: MqttClient;
  const replies = new Map<string, (p: Buffer) => void>();
  const replyTo = `test/oip/${randomUUID()}`;

  beforeAll(async () => {
    cases = await sample(100);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-oip-models-'));
    for (const c of cases) copyFileSync(c.model, path.join(dir, `${c.name}.onnx`));
    d = await startDaemon({ config: { modelsDir: dir, http: { port: 0 }, drift: { enabled: false } } });
    client = await mqtt.connectAsync(d.url, { protocolVersion: 4 });
    client.on('message', (_t, payload) => {
      const r = readReply(payload);
      replies.get(String(r.id))?.(payload);
    });
    await client.subscribeAsync(replyTo);
  }, 60_000);
  afterAll(async () => {
    await client?.endAsync();
    await d?.stop();
  });

  const mqttAsk = (model: string, id: string, payload: string | Buffer) =>
    new Promise<OipReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply for ${model}`)), 10_000);
      replies.set(id, (p) => {
        clearTimeout(timer);
        resolve(readReply(p));
      });
      client.publish(d.infer(model), payload);
    });

  it('covers every datatype class, scalars and multi-input/multi-output cases in the sample', () => {
    expect(cases.length).toBeGreaterThanOrEqual(90);
    const dtypes = new Set(cases.flatMap((c) => [...c.inputs, ...c.outputs].map((t) => t.dtype)));
    for (const t of ['float32', 'float64', 'float16', 'int64', 'int32', 'bool', 'uint8']) expect(dtypes).toContain(t);
    expect(cases.some((c) => c.inputs.some((t) => t.shape.length === 0) || c.outputs.some((t) => t.shape.length === 0))).toBe(true);
    expect(cases.some((c) => c.inputs.length > 1)).toBe(true);
    expect(cases.some((c) => c.outputs.length > 1)).toBe(true);
  });

  it('answers at least 95% of what onnxruntime-node alone passes, over MQTT JSON, MQTT binary and HTTP', async () => {
    const failures: string[] = [];
    let passed = 0;
    for (const c of cases) {
      const served = d.daemon.servedModels().has(c.name);
      if (!served) {
        failures.push(`${c.name}: not loaded`);
        continue;
      }
      const json = compare(c, await mqttAsk(c.name, `${c.name}-j`, JSON.stringify(oipJson(c.inputs, { id: `${c.name}-j`, replyTo }))));
      const binary = compare(c, await mqttAsk(c.name, `${c.name}-b`, oipFrame(c.inputs, { id: `${c.name}-b`, replyTo })));
      const res = await fetch(`${d.daemon.http!.url}/v2/models/${c.name}/infer`, { method: 'POST', body: JSON.stringify(oipJson(c.inputs)) });
      const http = compare(c, (await res.json()) as OipReply);
      const problem = json ?? binary ?? http;
      if (problem) failures.push(`${c.name} (${json ? 'mqtt json' : binary ? 'mqtt binary' : 'http'}): ${problem}`);
      else passed++;
    }
    if (failures.length) console.warn(`${passed}/${cases.length} passed; failures:\n${failures.join('\n')}`);
    expect(passed / cases.length, failures.join('\n')).toBeGreaterThanOrEqual(0.95);
  }, 120_000);
});
