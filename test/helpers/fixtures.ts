import { readFileSync } from 'node:fs';

/** Raw digits test rows that every shipped digits variant classifies correctly (written by scripts/build-models.ts). */
export const digitsSample: { rows: number[][]; labels: number[] } = JSON.parse(
  readFileSync(new URL('../fixtures/digits-sample.json', import.meta.url), 'utf8'),
);
