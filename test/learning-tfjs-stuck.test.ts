import { describe } from 'vitest';
import { acceptanceSuite } from './learning-acceptance.js';

describe('fine-tuning models/digits-tfjs (the tfjs LayersModel itself)', () => {
  acceptanceSuite('digits-tfjs', 'tfjs', ['stuck-pixels']);
});
