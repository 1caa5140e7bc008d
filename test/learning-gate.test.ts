import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareCandidate, fineTune, mcnemarPValue } from '../src/learning/index.js';
import { digitsScenario, faulty, FINETUNE_ROWS, randomLabels, REPLAY_ROWS, ROOT, slice, TEST_TRAINER } from './helpers/learning-scenario.js';

const DIGITS_TFJS = path.join(ROOT, 'models/digits-tfjs');

describe('the promotion gate (compareCandidate)', () => {
  it('McNemar one-sided p-values: no discordant pairs is no evidence, 10 of 10 is strong', () => {
    expect(mcnemarPValue(0, 0)).toBe(1);
    expect(mcnemarPValue(10, 10)).toBeCloseTo(1 / 1024, 6);
    expect(mcnemarPValue(5, 10)).toBeCloseTo(0.623046875, 6);
    expect(mcnemarPValue(0, 10)).toBeCloseTo(1, 9);
  });

  it('refuses a candidate compared with itself (no gain), and says why', async () => {
    const s = await digitsScenario(DIGITS_TFJS);
    const gate = await compareCandidate(DIGITS_TFJS, DIGITS_TFJS, s.clean, undefined, { minGain: 0.02, maxAnchorDrop: 0.02 });
    expect(gate.promote).toBe(false);
    expect(gate.numbers.holdout.gain).toBe(0);
    expect(gate.reason).toMatch(/below minGain/);
  });

  // Feedback with random labels: the device's holdout comes from the same feedback stream, so it is random too.
  for (const seed of [11, 12, 13]) {
    it(`never promotes a candidate fine-tuned on random labels (seed ${seed})`, async () => {
      const s = await digitsScenario(DIGITS_TFJS);
      const rows = randomLabels(faulty(slice(s.pool, 0, FINETUNE_ROWS), 'shift-right'), seed);
      const holdout = randomLabels(faulty(s.clean, 'shift-right'), seed + 100);
      const r = await fineTune({ bundleDir: DIGITS_TFJS, rows, replay: slice(s.pool, s.pool.rows - REPLAY_ROWS, REPLAY_ROWS), seed, policy: TEST_TRAINER }).result;
      if (r.outcome !== 'candidate') throw new Error(`${r.outcome}: ${r.message}`);
      try {
        const gate = await compareCandidate(DIGITS_TFJS, r.dir, holdout, undefined, { minGain: 0.02, maxAnchorDrop: 0.02 });
        expect(gate.promote, `${gate.reason} ${JSON.stringify(gate.numbers)}`).toBe(false);
        // The same gate on true labels would see it for what it is: no better on the faulty rows.
        const truth = await compareCandidate(DIGITS_TFJS, r.dir, faulty(s.clean, 'shift-right'), undefined, { minGain: 0.02, maxAnchorDrop: 0.02 });
        expect(truth.promote).toBe(false);
      } finally {
        await r.discard();
      }
    }, 400_000); // a hang bound: on a busy machine the nice-10 trainer gets little CPU
  }
});
