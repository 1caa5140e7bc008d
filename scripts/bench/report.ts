import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { pathToFileURL } from 'node:url';

/** Nearest-rank percentile of an unsorted sample (copied and sorted here). */
export function percentiles(values: ArrayLike<number>, ps: number[]): number[] {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return ps.map(() => NaN);
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);
}

/** A markdown table; cells are printed as given. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function met(ok: boolean): string {
  return ok ? 'met' : '**not met**';
}

/** One line describing the machine, for the record. */
export function machine(): string {
  const cpus = os.cpus();
  let broker = 'mosquitto ?';
  try {
    // `mosquitto -h` exits 3 but prints its version on the first line.
    broker = execFileSync('mosquitto', ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
  } catch (err) {
    broker = String((err as { stdout?: string }).stdout ?? '').split('\n')[0] || broker;
  }
  return `${os.availableParallelism()} cores (${cpus[0]?.model ?? 'unknown cpu'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}, ${broker}`;
}

/** True when the module at `url` is the script node was started with (run on its own). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href;
}

/** One target's verdict: what was measured, its value, the target, met / not met. */
export type TargetRow = [measure: string, value: string, target: string, result: string];

/** A benchmark's tables (markdown) and the verdicts on its targets. */
export interface BenchResult {
  md: string;
  targets: TargetRow[];
}

export function targetsTable(rows: TargetRow[]): string {
  return table(['measure', 'value', 'target', 'result'], rows);
}

/** A benchmark run on its own: its tables, then its targets. */
export function standalone(r: BenchResult, title = 'Targets (this run)'): string {
  return r.targets.length ? `${r.md}\n\n### ${title}\n\n${targetsTable(r.targets)}` : r.md;
}

/** A bench's generator run as a forked child: its result goes to the parent over IPC, then the child exits. */
export function runAsChild<T>(work: () => Promise<T>): void {
  work().then(
    (r) => process.send!(r as object, () => process.exit(0)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/**
 * A distribution-free confidence interval of the median (order statistics, sign test): the
 * widest [x(k), x(n-k+1)] whose coverage is at least `level`. Rounds on shared cores differ by
 * several points; the interval says whether they still pin the median below (or above) a bound.
 */
export function medianInterval(xs: number[], level = 0.9): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const binom = (k: number) => {
    let c = 1;
    for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
    return c / 2 ** n;
  };
  let below = 0; // P(Bin(n, 1/2) <= k - 1)
  let k = 0;
  while (k + 1 <= n / 2 && below + binom(k) <= (1 - level) / 2) below += binom(k++);
  return k === 0 ? [-Infinity, Infinity] : [s[k - 1], s[n - k]];
}
