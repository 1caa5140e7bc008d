/**
 * Shared body of test/learning-{onnx,tfjs}-{stuck,shift}.test.ts (issue 10's
 * acceptance): for both field faults, fine-tuning a shipped digits bundle on 500 labelled faulty
 * rows (plus 500 clean replay rows) recovers at least 80% of the accuracy the fault cost on
 * held-out faulty rows, costs at most 2 points on held-out clean rows, and the gate promotes it.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { readBundle } from '../src/bundle/index.js';
import { bundleAccuracy, compareCandidate, fineTune, type DigitsFault } from '../src/learning/index.js';
import { digitsScenario, faulty, FINETUNE_ROWS, REPLAY_ROWS, ROOT, slice, TEST_TRAINER } from './helpers/learning-scenario.js';

/** One fault on one model per test file, so each file stays short; the timeout bounds a hang. */
export function acceptanceSuite(model: string, expectVariant: string, faults: DigitsFault[]): void {
  const dir = path.join(ROOT, 'models', model);
  for (const fault of faults) {
    it(`${fault}: recovers >= 80% of the lost accuracy, clean drop <= 2 points, and the gate promotes it`, async () => {
      const s = await digitsScenario(dir);
      const heldShifted = faulty(s.clean, fault);
      const clean = await bundleAccuracy(dir, s.clean);
      const shifted = await bundleAccuracy(dir, heldShifted);
      // The fault must hurt for the ratio to mean anything.
      expect(clean - shifted).toBeGreaterThan(0.1);
      const rows = faulty(slice(s.pool, 0, FINETUNE_ROWS), fault);
      const replay = slice(s.pool, s.pool.rows - REPLAY_ROWS, REPLAY_ROWS);
      const r = await fineTune({ bundleDir: dir, rows: { ...rows, at: [1000, 2000] }, replay, policy: TEST_TRAINER }).result;
      if (r.outcome !== 'candidate') throw new Error(`${r.outcome}: ${r.message}`);
      try {
        const after = await bundleAccuracy(r.dir, heldShifted);
        const afterClean = await bundleAccuracy(r.dir, s.clean);
        expect((after - shifted) / (clean - shifted)).toBeGreaterThanOrEqual(0.8);
        expect(clean - afterClean).toBeLessThanOrEqual(0.02);

        // A verified bundle in the parent's own format, with its lineage.
        const b = await readBundle(r.dir);
        const parent = (await readBundle(dir)).manifest;
        expect(b.manifest.name).toBe(parent.name);
        expect(b.manifest.version).toBe(`${parent.version}-ft.1`);
        expect(b.manifest.runtime).toBe(parent.runtime);
        expect(b.manifest.quantization).toBe(parent.quantization);
        expect(b.manifest.preprocessing).toEqual(parent.preprocessing);
        const t = b.manifest.training as Record<string, unknown>;
        expect(t).toMatchObject({ source: 'finetune', parentVersion: parent.version, strategy: 'full', exportedAs: expectVariant, rows: { new: 400, replay: 400 } });
        expect(t.timeRange).toEqual({ from: new Date(1000).toISOString(), to: new Date(2000).toISOString() });
        if (parent.runtime === 'onnx') expect(b.files.has(b.manifest.trainable!.entry)).toBe(true);

        const gate = await compareCandidate(dir, r.dir, heldShifted, undefined, { minGain: 0.02, maxAnchorDrop: 0.02 });
        expect(gate.promote, gate.reason).toBe(true);
        expect(gate.numbers.anchor!.rows).toBe(32);
      } finally {
        await r.discard();
      }
    }, 400_000); // a hang bound: on a busy machine the nice-10 trainer gets little CPU
  }
}
