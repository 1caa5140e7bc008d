/**
 * Hot-path counters as plain numbers. prom-client's labelled children hash their label object
 * into a string on every inc()/observe(); these cells are bound once per model version (and
 * once per outcome code), so a request costs a few additions and a short bucket scan.
 * The registry reads them only when /metrics is scraped (see metric-families.ts).
 */

/** A cumulative histogram with fixed upper bounds (Prometheus `le`). */
export class HistogramCell {
  /** counts[i]: observations <= bounds[i] and > bounds[i-1]; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** Seconds: request latency inside the daemon, 0.25 ms to 10 s. */
export const REQUEST_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: one engine call, 25 µs to 2.5 s. */
export const ENGINE_BUCKETS = [0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];
/** Rows in one engine call (micro-batch size). */
export const ROWS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/** Everything counted per served model version on the request path. */
export class VersionCells {
  /** Requests by outcome code ('OK' or an EDGELOOP_* code) and protocol. */
  readonly outcomes = new Map<string, { protocol: string; code: string; n: number }>();
  readonly request = new HistogramCell(REQUEST_BUCKETS);
  readonly engine = new HistogramCell(ENGINE_BUCKETS);
  readonly rows = new HistogramCell(ROWS_BUCKETS);
  /** The batcher's own counters (busy, timeouts): read at scrape, kept after the version retires. */
  stats?: { busy: number; timeouts: number };
  private readonly byProtocol = new Map<string, Map<string, { protocol: string; code: string; n: number }>>();

  constructor(
    readonly model: string,
    readonly version: string,
  ) {}

  /** One answered request: its outcome code and time inside the daemon. */
  outcome(protocol: string, code: string, seconds: number): void {
    let codes = this.byProtocol.get(protocol);
    if (!codes) this.byProtocol.set(protocol, (codes = new Map()));
    let cell = codes.get(code);
    if (!cell) {
      cell = { protocol, code, n: 0 };
      codes.set(code, cell);
      this.outcomes.set(`${protocol} ${code}`, cell); // once per (protocol, code), not per request
    }
    cell.n++;
    this.request.observe(seconds);
  }
}
