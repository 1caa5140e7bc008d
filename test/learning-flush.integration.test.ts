import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsScenario, slice, TEST_TRAINER } from './helpers/learning-scenario.js';

describe('a manual retrain', () => {
  let d: RunningDaemon;
  let client: TestClient;
  beforeAll(async () => {
    const models = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-learn-flush-'));
    cpSync('models/digits', path.join(models, 'digits'), { recursive: true });
    // No timed flush during the test: acknowledged rows wait in memory until something flushes them.
    d = await startDaemon({ config: { modelsDir: models, feedback: { flushIntervalMs: 600_000 }, learning: { ...TEST_TRAINER, auto: false } } });
    client = await TestClient.connect(d.url, 4);
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });

  it('trains on every labelled row acknowledged before it, also those not yet flushed', async () => {
    const scenario = await digitsScenario('models/digits');
    const rows = slice(scenario.pool, 0, 100);
    for (let i = 0; i < rows.rows; i += 25) {
      const inputs = Array.from({ length: 25 }, (_, k) => Array.from(rows.x.subarray((i + k) * 64, (i + k + 1) * 64)));
      const ack = (await client.request(`edgeloop/${d.deviceId}/feedback/digits`, { inputs, labels: Array.from(rows.y.subarray(i, i + 25), String) })) as { accepted?: number };
      expect(ack.accepted).toBe(25);
    }
    expect(d.daemon.feedback!.store.counts().find((c) => c.model === 'digits')?.inserted ?? 0).toBe(0); // acknowledged, not stored yet
    const { done } = d.daemon.learning!.retrain('digits', { actor: 'cli', dryRun: true });
    const outcome = await done;
    expect(outcome.rows.new + outcome.rows.holdout, JSON.stringify(outcome)).toBe(100);
    expect(outcome.outcome).not.toBe('failed');
  }, 120_000);
});
