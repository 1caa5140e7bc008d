import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { makeVersion } from './helpers/bundles.js';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { digitsOnlyModels, sleep } from './helpers/hostile.js';

const { onnx } = onnxProto;

/**
 * The digits model with extra float MatMuls (256 wide, `layers` deep) whose result is multiplied
 * by 0 and added to the logits: the same answers from an engine several times slower.
 */
function slowerGraph(layers: number) {
  return (bytes: Uint8Array): Uint8Array => {
    const model = onnx.ModelProto.decode(bytes);
    const g = model.graph!;
    const out = g.output![0].name!;
    for (const n of g.node!) n.output = n.output!.map((o) => (o === out ? `${out}_pre` : o));
    const tensor = (name: string, dims: number[]) => onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, floatData: Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => ((i % 7) - 3) / 100) });
    g.initializer!.push(tensor('slow_w0', [64, 256]), tensor('slow_wr', [256, 1]), onnx.TensorProto.create({ name: 'slow_zero', dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [0] }));
    g.node!.push(onnx.NodeProto.create({ opType: 'MatMul', input: ['input', 'slow_w0'], output: ['slow_h0'] }));
    for (let k = 1; k <= layers; k++) {
      g.initializer!.push(tensor(`slow_w${k}`, [256, 256]));
      g.node!.push(onnx.NodeProto.create({ opType: 'MatMul', input: [`slow_h${k - 1}`, `slow_w${k}`], output: [`slow_h${k}`] }));
    }
    g.node!.push(
      onnx.NodeProto.create({ opType: 'MatMul', input: [`slow_h${layers}`, 'slow_wr'], output: ['slow_s'] }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['slow_s', 'slow_zero'], output: ['slow_z'] }),
      onnx.NodeProto.create({ opType: 'Add', input: [`${out}_pre`, 'slow_z'], output: [out] }),
    );
    return onnx.ModelProto.encode(model).finish();
  };
}

describe('trial latency verdicts under load with a CPU hog', () => {
  let d: RunningDaemon;
  let hog: ChildProcess;
  let client: TestClient;
  let load = true;
  let loadDone: Promise<void>;

  beforeAll(async () => {
    d = await startDaemon({ config: { modelsDir: digitsOnlyModels(), registry: { trial: { minInferences: 30, windowSeconds: 3600 }, watch: { hours: 0 } } } });
    hog = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
    client = await TestClient.connect(d.url, 4);
    // Steady traffic: 2 requests in flight all the time (the client shares this event loop with the daemon).
    loadDone = Promise.all(
      Array.from({ length: 2 }, async (_, k) => {
        for (let i = k; load; i += 2) await client.request(d.infer('digits'), { inputs: digitsSample.rows[i % digitsSample.rows.length] }).catch(() => undefined);
      }),
    ).then(() => undefined);
  });
  afterAll(async () => {
    load = false;
    await loadDone;
    hog?.kill('SIGKILL');
    await client?.close();
    await d?.stop();
  });

  async function verdict(version: string): Promise<string> {
    // A 10 ms poll (a SQLite read) sees the verdict soon after it lands; the bound stays 15 s.
    for (let i = 0; i < 1500; i++) {
      const status = d.daemon.registry!.version('digits', version).status;
      if (status !== 'trial') return status;
      await sleep(10);
    }
    throw new Error(`no verdict for ${version}`);
  }

  it('20 swaps of byte-identical versions are all committed, a 5x slower version is rolled back', async () => {
    const statuses: string[] = [];
    for (let k = 1; k <= 20; k++) {
      const version = `1.0.${k}`;
      await d.daemon.registry!.install(await makeVersion('models/digits', version), { actor: 'cli', source: 'manual' });
      await d.daemon.models.activate('digits', version, { actor: 'cli', force: true });
      statuses.push(await verdict(version));
    }
    expect(statuses).toEqual(new Array(20).fill('active'));
    await d.daemon.registry!.install(await makeVersion('models/digits', '2.0.0', slowerGraph(16)), { actor: 'cli', source: 'manual' });
    await d.daemon.models.activate('digits', '2.0.0', { actor: 'cli', force: true });
    const slowVerdict = await verdict('2.0.0');
    expect(slowVerdict, d.daemon.registry!.version('digits', '2.0.0').statusReason ?? '').not.toBe('active');
    const row = d.daemon.registry!.version('digits', '2.0.0');
    expect(row.statusReason).toMatch(/trial failed: engine \d+\.\d\dx slower than the previous version/);
    expect(d.daemon.servedModels().get('digits')!.version).toBe('1.0.20');
  }, 60_000);
});
