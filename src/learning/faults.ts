/**
 * Field faults of the digits demo (8x8 images as rows of 64 pixels), for the learning loop's
 * tests, benchmark and demo: a sensor fault changes every input the same way.
 */

/** The two input-level shifts of issue 10. */
export type DigitsFault = 'stuck-pixels' | 'shift-right';

/**
 * Four central pixels stuck at 0: (3,3), (3,4), (4,3), (4,4), indices 27, 28, 35, 36 — the
 * centre of the 8x8 image, ranked 14th, 9th, 4th and 12th of 64 by variance in data/digits.csv
 * (a 0 has a hole there, a 1 or an 8 ink). Losing them costs the shipped digits MLP about 19
 * points of accuracy (98.8% -> 80.0%).
 */
export const STUCK_PIXELS = [27, 28, 35, 36] as const;

/** Apply a fault to raw rows of 64 pixels (returns a copy). shift-right: column c takes column c-1's value, column 0 becomes 0. */
export function applyDigitsFault(x: Float32Array, fault: DigitsFault, pixels: readonly number[] = STUCK_PIXELS): Float32Array {
  const out = Float32Array.from(x);
  const rows = x.length / 64;
  for (let r = 0; r < rows; r++) {
    const o = r * 64;
    if (fault === 'stuck-pixels') for (const p of pixels) out[o + p] = 0;
    else {
      for (let row = 0; row < 8; row++) {
        for (let c = 7; c >= 1; c--) out[o + row * 8 + c] = x[o + row * 8 + c - 1];
        out[o + row * 8] = 0;
      }
    }
  }
  return out;
}
