/**
 * Every ONNX backend node test of Debian's libonnx-testdata, served as a bare model by the
 * daemon (OIP v2 over HTTP), next to onnxruntime-node alone on the same case. Prints a table of
 * pass / fail / not loaded (with reasons) and the ratio daemon / ORT alone.
 *
 *   npx tsx scripts/oip-conformance.ts [--limit N] [--verbose]
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { toValues } from '../src/tensor/index.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { oipJson, type OipReply } from '../test/helpers/oip-client.js';
import { caseNames, loadCase, sameValues, type OnnxCase } from '../test/helpers/onnx-testdata.js';

ort.env.logLevel = 'fatal';
const { values } = parseArgs({ options: { limit: { type: 'string' }, verbose: { type: 'boolean' } } });
const names = caseNames().slice(0, values.limit ? Number(values.limit) : undefined);
const cases: OnnxCase[] = [];
const skipped: string[] = [];
for (const n of names) {
  const c = loadCase(n);
  if (c && /^[a-z0-9][a-z0-9._-]{0,63}$/.test(c.name)) cases.push(c);
  else skipped.push(n);
}
async function ortAlone(c: OnnxCase): Promise<string | undefined> {
  try {
    const s = await ort.InferenceSession.create(c.model, { logSeverityLevel: 4 });
    try {
      const out = await s.run(Object.fromEntries(c.inputs.map((t) => [t.name, new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.shape)])));
      for (const e of c.outputs) {
        const g = out[e.name];
        const p = g ? sameValues(e, g.type, g.dims, toValues(g.type as never, g.data as never)) : 'missing';
        if (p) return `wrong: ${p}`;
      }
      return undefined;
    } finally {
      await s.release();
    }
  } catch (err) {
    return (err as Error).message.split('\n')[0].slice(0, 120);
  }
}
const ortResult = new Map<string, string | undefined>();
for (const c of cases) ortResult.set(c.name, await ortAlone(c));
const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-conformance-'));
for (const c of cases) copyFileSync(c.model, path.join(dir, `${c.name}.onnx`));
const d = await startDaemon({ config: { modelsDir: dir, http: { port: 0 }, drift: { enabled: false }, feedback: { enabled: false }, serving: { maxPayloadBytes: 64 * 1024 * 1024 } } });
const served = d.daemon.servedModels();
const rows: { name: string; ort: string; daemon: string }[] = [];
for (const c of cases) {
  const o = ortResult.get(c.name);
  let daemon: string;
  if (!served.has(c.name)) daemon = 'not loaded';
  else {
    const r = (await (await fetch(`${d.daemon.http!.url}/v2/models/${c.name}/infer`, { method: 'POST', body: JSON.stringify(oipJson(c.inputs)) })).json()) as OipReply;
    if (r.error) daemon = `fail: ${r.error.code} ${r.error.message.slice(0, 100)}`;
    else {
      const p = c.outputs.map((e) => {
        const out = r.outputs?.find((x) => x.name === e.name);
        return out ? sameValues(e, { BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64', INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64', FP16: 'float16', FP32: 'float32', FP64: 'float64', BYTES: 'string' }[out.datatype] ?? out.datatype, out.shape, out.data) : 'missing';
      }).find(Boolean);
      daemon = p ? `fail: ${p}` : 'pass';
    }
  }
  rows.push({ name: c.name, ort: o === undefined ? 'pass' : `fail: ${o}`, daemon });
}
await d.stop();
rmSync(dir, { recursive: true, force: true });
const ortPass = rows.filter((r) => r.ort === 'pass');
const both = ortPass.filter((r) => r.daemon === 'pass').length;
const count = (f: (r: (typeof rows)[number]) => boolean) => rows.filter(f).length;
console.log(`| | cases |\n| --- | --- |`);
console.log(`| tensor cases in libonnx-testdata | ${cases.length} (${skipped.length} others skipped: sequences, optional, huge, unsupported element types) |`);
console.log(`| onnxruntime-node alone passes | ${ortPass.length} |`);
console.log(`| daemon passes | ${count((r) => r.daemon === 'pass')} |`);
console.log(`| daemon fails | ${count((r) => r.daemon.startsWith('fail'))} |`);
console.log(`| daemon did not load | ${count((r) => r.daemon === 'not loaded')} |`);
console.log(`| daemon / ORT alone (cases ORT alone passes) | ${both} / ${ortPass.length} = ${((100 * both) / Math.max(1, ortPass.length)).toFixed(1)}% |`);
const shown = rows.filter((r) => r.ort === 'pass' && r.daemon !== 'pass');
if (shown.length || values.verbose) {
  console.log('\n| case | onnxruntime-node alone | daemon |\n| --- | --- | --- |');
  for (const r of values.verbose ? rows : shown) console.log(`| ${r.name} | ${r.ort} | ${r.daemon} |`);
}
