import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { loadServedModel } from '../src/daemon/load-models.js';
import type { ServedModel } from '../src/engine/index.js';
import { number6, rowsReplyJson } from '../src/transport/reply-json.js';

const config = resolveConfig({ home: 'unused' }, {}, {});
const models: Record<string, ServedModel> = {};

describe('reply JSON written directly', () => {
  beforeAll(async () => {
    for (const name of ['digits', 'diabetes', 'breast-cancer']) models[name] = await loadServedModel(path.resolve('models', name), config, { ...config.serving });
  });
  afterAll(async () => {
    for (const m of Object.values(models)) await m.dispose();
  });

  it('formats numbers exactly as JSON.stringify does', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
    const values = [0, -0, 1, -1, 0.5, 1e-6, -1e-6, 1e-7, 123456789.123456, 999999999.999999, 1e9 + 0.5, 1e21, 2 ** 53, NaN, Infinity, -Infinity, 0.1 + 0.2, 1 / 3];
    for (let i = 0; i < 20_000; i++) {
      const scale = 10 ** Math.floor(rand() * 12 - 3);
      const x = (rand() - 0.3) * scale;
      values.push(x, round6(x), Math.round(x * 1e3) / 1e3, Math.round(x));
    }
    for (const x of values) expect(number6(x), String(x)).toBe(JSON.stringify(x));
  });

  it('gives the text JSON.stringify gives of the same reply, for classifiers and regressors', async () => {
    const digits = models.digits;
    const rows = 3;
    const x = new Float32Array(rows * 64).map((_, i) => (i * 7) % 17);
    for (const [model, feeds] of [
      [digits, { [digits.inputs[0].name]: x }],
      [models.diabetes, { [models.diabetes.inputs[0].name]: new Float32Array(rows * models.diabetes.inputs[0].rowSize).map((_, i) => ((i % 7) - 3) / 50) }],
      [models['breast-cancer'], { [models['breast-cancer'].inputs[0].name]: new Float32Array(rows * models['breast-cancer'].inputs[0].rowSize).map((_, i) => (i % 11) * 3.7) }],
    ] as const) {
      const { predictions } = await model.predict(feeds, rows, Date.now() + 5000);
      const cases: [string | undefined, string | number | undefined][] = [[undefined, undefined], ['p-1', 'req "7"'], [undefined, 42]];
      for (const [pid, id] of cases) {
        (predictions as { predictionId?: string }[]).forEach((p, i) => (p.predictionId = pid === undefined ? undefined : `${pid}${i}`));
        if (pid === undefined) for (const p of predictions) delete (p as { predictionId?: string }).predictionId;
        const reply: Record<string, unknown> = { model: model.name, version: model.version, predictions, latencyMs: 0.123 };
        if (pid !== undefined) reply.predictionId = pid;
        if (id !== undefined) reply.id = id;
        expect(rowsReplyJson(model, predictions, 0.123, pid, id)).toBe(JSON.stringify(reply));
      }
    }
  });
});
