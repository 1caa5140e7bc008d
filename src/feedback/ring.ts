import { randomBytes } from 'node:crypto';

/** Rows per lazily allocated chunk: an idle model costs nothing, a busy one grows to ringSize. */
const CHUNK_ROWS = 1024;

/** A recent prediction as feedback finds it by its id. */
export interface RingEntry {
  /** Raw input row (a copy, not standardised). */
  inputs: Float32Array;
  /** Class index or regression value. */
  predicted: number;
  version: string;
  at: number;
}

/**
 * Prediction ids: `<boot prefix>-<counter base36>`. The prefix (random per process start) keeps
 * ids unique across restarts; the counter is one number for the whole device, so an id also
 * orders predictions in time and finds its ring slot by binary search (no map, no allocation).
 */
export class PredictionIds {
  readonly prefix: string;
  private counter = 0;

  constructor(prefix = randomBytes(3).toString('hex')) {
    this.prefix = prefix;
  }

  /** Reserve `rows` consecutive counters; returns the first. */
  take(rows: number): number {
    const first = this.counter + 1;
    this.counter += rows;
    return first;
  }

  format(counter: number): string {
    return `${this.prefix}-${counter.toString(36)}`;
  }

  /** The counter of an id issued by this process, or undefined (another boot, or not an id). */
  parse(id: string): number | undefined {
    const dash = id.lastIndexOf('-');
    if (dash <= 0 || dash !== this.prefix.length || !id.startsWith(this.prefix)) return undefined;
    const tail = id.slice(dash + 1);
    if (!/^[0-9a-z]{1,11}$/.test(tail)) return undefined;
    const n = parseInt(tail, 36);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  }
}

/**
 * The recent predictions of one model: raw input rows, prediction, version and time, in a
 * circular buffer of `capacity` rows held in fixed typed-array chunks. Recording a row is a
 * memcpy and a few stores; nothing is allocated once a chunk exists. Rows are written before
 * predict() (which standardises the feed in place) and completed after it; a slot whose
 * request failed stays incomplete and is not found.
 */
export class PredictionRing {
  private readonly chunks: { x: Float32Array; ids: Float64Array; predicted: Float64Array; at: Float64Array; version: Uint16Array; state: Uint8Array }[] = [];
  private readonly versions: string[] = [];
  /** Slots written so far (the next slot is written % capacity). */
  private written = 0;

  constructor(
    readonly rowSize: number,
    readonly capacity: number,
  ) {}

  /** Bytes the allocated chunks hold. */
  get bytes(): number {
    return this.chunks.length * CHUNK_ROWS * (this.rowSize * 4 + 8 + 8 + 8 + 2 + 1);
  }

  /** Rows held. */
  get size(): number {
    return Math.min(this.written, this.capacity);
  }

  /** Bytes a full ring of `capacity` rows of `rowSize` floats takes. */
  static bytesFor(rowSize: number, capacity: number): number {
    return Math.ceil(capacity / CHUNK_ROWS) * CHUNK_ROWS * (rowSize * 4 + 8 + 8 + 8 + 2 + 1);
  }

  /** Copy `rows` raw rows of `feed` in under ids first..first+rows-1 (state: pending). Returns the first slot. */
  write(feed: Float32Array, rows: number, first: number, version: string, at: number): number {
    const v = this.versionIndex(version);
    const start = this.written;
    for (let r = 0; r < rows; r++) {
      const slot = (this.written++ % this.capacity) >>> 0;
      const c = this.chunk(slot);
      const i = slot % CHUNK_ROWS;
      c.x.set(feed.subarray(r * this.rowSize, (r + 1) * this.rowSize), i * this.rowSize);
      c.ids[i] = first + r;
      c.predicted[i] = NaN;
      c.at[i] = at;
      c.version[i] = v;
      c.state[i] = 1;
    }
    return start;
  }

  /** Set the predictions of rows written at `start` (skipped if the ring has wrapped over them since). */
  complete(start: number, first: number, predicted: ArrayLike<number>): void {
    for (let r = 0; r < predicted.length; r++) {
      const slot = (start + r) % this.capacity;
      const c = this.chunks[Math.floor(slot / CHUNK_ROWS)];
      const i = slot % CHUNK_ROWS;
      if (c.ids[i] !== first + r) continue;
      c.predicted[i] = predicted[r];
      c.state[i] = 2;
    }
  }

  /**
   * The entry of a prediction id counter, or undefined when it expired, never completed, or is
   * not this model's. `claim` marks it labelled: a second claim answers 'duplicate'.
   */
  find(id: number, claim = false): RingEntry | 'duplicate' | undefined {
    const slot = this.slotOf(id);
    if (slot === undefined) return undefined;
    const c = this.chunks[Math.floor(slot / CHUNK_ROWS)];
    const i = slot % CHUNK_ROWS;
    if (c.state[i] === 3) return 'duplicate';
    if (c.state[i] !== 2) return undefined;
    if (claim) c.state[i] = 3;
    return { inputs: c.x.slice(i * this.rowSize, (i + 1) * this.rowSize), predicted: c.predicted[i], version: this.versions[c.version[i]], at: c.at[i] };
  }

  /** Undo a claim (a message refused as a whole after some ids were claimed). */
  unclaim(id: number): void {
    const slot = this.slotOf(id);
    if (slot === undefined) return;
    const c = this.chunks[Math.floor(slot / CHUNK_ROWS)];
    if (c.state[slot % CHUNK_ROWS] === 3) c.state[slot % CHUNK_ROWS] = 2;
  }

  /** Ids increase with the slot order (one device-wide counter): binary search over the held rows. */
  private slotOf(id: number): number | undefined {
    const n = this.size;
    if (n === 0) return undefined;
    const oldest = this.written - n;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const slot = (oldest + mid) % this.capacity;
      const v = this.chunks[Math.floor(slot / CHUNK_ROWS)].ids[slot % CHUNK_ROWS];
      if (v === id) return slot;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  private chunk(slot: number) {
    const k = Math.floor(slot / CHUNK_ROWS);
    let c = this.chunks[k];
    if (!c) {
      const rows = CHUNK_ROWS;
      c = { x: new Float32Array(rows * this.rowSize), ids: new Float64Array(rows), predicted: new Float64Array(rows), at: new Float64Array(rows), version: new Uint16Array(rows), state: new Uint8Array(rows) };
      this.chunks[k] = c;
    }
    return c;
  }

  private versionIndex(version: string): number {
    const last = this.versions.length - 1;
    if (last >= 0 && this.versions[last] === version) return last;
    let i = this.versions.indexOf(version);
    if (i < 0) {
      // A long-lived daemon with thousands of switches: old names are only labels of old rows.
      if (this.versions.length >= 65535) this.versions.length = 0;
      i = this.versions.push(version) - 1;
    }
    return i;
  }
}
