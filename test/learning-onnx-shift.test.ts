import { describe } from 'vitest';
import { acceptanceSuite } from './learning-acceptance.js';

describe('fine-tuning models/digits (ONNX int8 static, from its carried float32 source)', () => {
  acceptanceSuite('digits', 'onnx-int8-static', ['shift-right']);
});
