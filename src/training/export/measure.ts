import { TYPED_ARRAYS, type Engine, type EngineTensor } from '../../engine/index.js';

/** Batch sizes `edgeloop export` measures: a lone request, and a full micro-batch. */
export const MEASURE_BATCHES: readonly number[] = [1, 32];
/** Time spent measuring each engine at each batch size, in milliseconds. */
export const MEASURE_MS = 400;
/** Default largest score drop (accuracy or R², versus the source) a recommended variant may have. */
export const DEFAULT_TOLERANCE = 0.01;

/** Windows per engine and batch size: short, taken in turns (see measureThroughput). */
export const MEASURE_WINDOWS = 8;
/** Warm-up before timing: first calls compile kernels and fill arenas. */
const WARM_UP_MS = 60;

/** One engine's measured speed at one batch size. */
export interface Throughput {
  batch: number;
  callsPerSecond: number;
  rowsPerSecond: number;
}

/**
 * Throughput of `engine.run` in a loop on a fixed batch, for each engine at each batch size, on
 * this machine. The engines take turns in short windows and each keeps its best window: on a
 * shared machine, load only ever slows a window down, and taking turns gives every engine the
 * same conditions, so the ratios between them hold even when the absolute figures move.
 * Returns one list per engine, in `batches` order.
 */
export async function measureThroughput(engines: readonly Engine[], opts: { batches?: readonly number[]; ms?: number } = {}): Promise<Throughput[][]> {
  const batches = opts.batches ?? MEASURE_BATCHES;
  const windowMs = (opts.ms ?? MEASURE_MS) / MEASURE_WINDOWS;
  const out = engines.map((): Throughput[] => []);
  for (const batch of batches) {
    const feeds = engines.map((e) => syntheticFeeds(e, batch));
    const best = engines.map(() => 0);
    for (const [i, e] of engines.entries()) await runFor(e, feeds[i], WARM_UP_MS);
    for (let w = 0; w < MEASURE_WINDOWS; w++) {
      for (const [i, e] of engines.entries()) best[i] = Math.max(best[i], await runFor(e, feeds[i], windowMs));
    }
    best.forEach((calls, i) => out[i].push({ batch, callsPerSecond: calls, rowsPerSecond: calls * batch }));
  }
  return out;
}

const FIRST_ONLY = { firstOnly: true };

/** Calls per second of engine.run over about `ms` (at least one call). */
async function runFor(engine: Engine, feeds: Record<string, EngineTensor>, ms: number): Promise<number> {
  const t0 = performance.now();
  let calls = 0;
  do {
    // As a classifier or regression reply runs it: the first output (an embedding output is not computed).
    await engine.run(feeds, FIRST_ONLY);
    calls++;
  } while (performance.now() - t0 < ms);
  return calls / ((performance.now() - t0) / 1000);
}

/**
 * A batch of `batch` rows for every input: float values in the range standardised features
 * take (deterministic), zeros for other dtypes. Speed does not depend on the values, except
 * for float denormals, which these are not.
 */
function syntheticFeeds(engine: Engine, batch: number): Record<string, EngineTensor> {
  const feeds: Record<string, EngineTensor> = {};
  for (const input of engine.inputs) {
    const rest = input.shape.slice(1);
    if (rest.some((d) => d < 0)) throw new Error(`cannot measure '${input.name}': its shape [${input.shape.join(', ')}] has a dynamic dimension besides the batch`);
    const dims = [batch, ...rest];
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new TYPED_ARRAYS[input.dtype](n);
    if (data instanceof Float32Array || data instanceof Float64Array) for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.7) * 1.5;
    feeds[input.name] = { dtype: input.dtype, data, dims };
  }
  return feeds;
}

/** One variant as the recommendation sees it. */
export interface Candidate {
  name: string;
  /** Whether its score is within the tolerance of the source's; undefined when not checked (no data). */
  withinTolerance?: boolean;
  throughput: readonly Throughput[];
}

/** What {@link recommend} picked. */
export interface Recommendation {
  /** The candidate to serve on this machine: never slower than the baseline at any measured batch size. */
  name: string;
  /** Its rows/s over the baseline's, per batch size (1 for the baseline itself). */
  speedup: Record<number, number>;
  /** Per batch size, the fastest candidate within tolerance (the baseline included). */
  fastest: Record<number, string>;
}

/**
 * Pick the variant to serve: among the candidates within tolerance (or not checked), the one
 * whose smallest speed-up over `baseline` (the float32 model) across the measured batch sizes
 * is the largest. The baseline has speed-up 1 everywhere, so another candidate wins only when
 * it is faster at every batch size; if none is, the baseline is the answer. The baseline is a
 * candidate whatever its own tolerance check says: it is the reference speed.
 */
export function recommend(candidates: readonly Candidate[], baseline: string): Recommendation {
  const base = candidates.find((c) => c.name === baseline);
  if (!base) throw new Error(`recommend: no baseline '${baseline}' among the candidates`);
  const rate = (c: Candidate, batch: number): number => c.throughput.find((t) => t.batch === batch)?.rowsPerSecond ?? 0;
  const batches = base.throughput.map((t) => t.batch);
  const eligible = candidates.filter((c) => c === base || c.withinTolerance !== false);
  const worst = (c: Candidate): number => Math.min(...batches.map((b) => rate(c, b) / rate(base, b)));
  let pick = base;
  for (const c of eligible) if (worst(c) > worst(pick)) pick = c;
  const speedup: Record<number, number> = {};
  const fastest: Record<number, string> = {};
  for (const b of batches) {
    speedup[b] = rate(pick, b) / rate(base, b);
    fastest[b] = eligible.reduce((x, c) => (rate(c, b) > rate(x, b) ? c : x), base).name;
  }
  return { name: pick.name, speedup, fastest };
}
