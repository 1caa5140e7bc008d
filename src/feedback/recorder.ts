import type { PredictResult, ServedModel, TypedArray } from '../engine/index.js';
import type { PredictionTap } from '../transport/index.js';
import { PredictionIds, PredictionRing } from './ring.js';

interface Token {
  ring: PredictionRing;
  first: number;
  start: number;
}

/**
 * The request path's part of feedback (a PredictionTap): one PredictionRing per model, made on
 * the model's first request, and the device's prediction ids. Per request: a counter, a copy
 * of the raw rows into the ring, and after predict() the predicted class or value.
 */
export class PredictionRecorder implements PredictionTap {
  readonly ids: PredictionIds;
  private readonly rings = new Map<string, PredictionRing>();
  private scratch = new Float64Array(64);

  constructor(
    private readonly capacity: number,
    ids = new PredictionIds(),
  ) {
    this.ids = ids;
  }

  ring(model: string): PredictionRing | undefined {
    return this.rings.get(model);
  }

  /** Memory held by every ring, by model. */
  memory(): { model: string; rows: number; bytes: number }[] {
    return [...this.rings].map(([model, r]) => ({ model, rows: r.size, bytes: r.bytes }));
  }

  before(model: ServedModel, feeds: Record<string, TypedArray>, rows: number): unknown {
    const input = model.inputs[0];
    const feed = feeds[input.name];
    if (!(feed instanceof Float32Array) || model.inputs.length !== 1 || model.manifest.task === 'embedding') return undefined;
    let ring = this.rings.get(model.name);
    if (!ring || ring.rowSize !== input.rowSize) {
      // No ring (feedback.ringSize 0): ids still name the replies, feedback by id cannot find them.
      if (this.capacity === 0) return { ring: undefined, first: this.ids.take(rows), start: 0 };
      ring = new PredictionRing(input.rowSize, this.capacity);
      this.rings.set(model.name, ring);
    }
    const first = this.ids.take(rows);
    const start = ring.write(feed, rows, first, model.version, Date.now());
    return { ring, first, start } satisfies Token;
  }

  after(_model: ServedModel, token: unknown, predictions: PredictResult['predictions']): void {
    const t = token as Token | { ring: undefined; first: number };
    const n = predictions.length;
    if (t.ring) {
      if (this.scratch.length < n) this.scratch = new Float64Array(n);
      const out = this.scratch;
      for (let r = 0; r < n; r++) {
        const p = predictions[r] as { index?: number; value?: number };
        out[r] = p.index ?? p.value ?? NaN;
      }
      t.ring.complete((t as Token).start, t.first, out.subarray(0, n));
    }
    for (let r = 0; r < n; r++) (predictions[r] as { predictionId?: string }).predictionId = this.ids.format(t.first + r);
  }
}
