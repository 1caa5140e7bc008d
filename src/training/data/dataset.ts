import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { EdgeloopError } from '../../errors.js';
import { parseCsv } from './csv.js';

export type Task = 'classification' | 'regression';

/** A numeric table ready for training: raw feature values and encoded targets. */
export interface Dataset {
  /** The file as it was named (kept relative, so records do not leak this machine's paths). */
  source: string;
  sha256: string;
  features: string[];
  label: string;
  task: Task;
  rows: number;
  /** rows x features, raw (not standardised) values, row-major. */
  x: Float32Array;
  /** Classification: index into `classes`; regression: the target value. */
  y: Float64Array;
  /** Class names, in model output order (classification only). */
  classes?: string[];
  /** Rows read before dropping. */
  totalRows: number;
  /** Rows dropped for missing values, and how many missing values each column had. */
  dropped: { rows: number; byColumn: Record<string, number> };
}

export interface DatasetOptions {
  label: string;
  task: Task;
  /** Feature columns, in model order (default: every column but the label, in file order). */
  features?: string[];
  /** Known class order (a bundle's labels); classes not in it are appended, sorted. */
  classes?: string[];
}

/** Spellings of a missing value (compared lower-case). */
const MISSING = new Set(['', 'na', 'n/a', 'nan', 'null', 'none', '?']);
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const dataError = (message: string): EdgeloopError => new EdgeloopError('EDGELOOP_DATA_INVALID', message);

/** Read a CSV file into a {@link Dataset}; every problem is an EDGELOOP_DATA_INVALID naming the file. */
export async function readCsvDataset(file: string, opts: DatasetOptions): Promise<Dataset> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw dataError(code === 'ENOENT' ? `${file}: no such file` : code === 'EISDIR' ? `${file}: is a folder, expected a CSV file` : `${file}: cannot read (${(err as Error).message})`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return datasetFromCsv(bytes.toString('utf8'), file, opts, sha256);
}

/** Parse CSV text into a {@link Dataset}: numeric features, rows with missing values dropped and counted. */
export function datasetFromCsv(text: string, source: string, opts: DatasetOptions, sha256 = createHash('sha256').update(text).digest('hex')): Dataset {
  const table = parseCsv(text, source);
  const { header } = table;
  const labelCol = header.indexOf(opts.label);
  if (labelCol < 0) throw dataError(`${source}: label column '${opts.label}' not found; the columns are ${listColumns(header, opts.label)}`);
  const features = opts.features ?? header.filter((_, i) => i !== labelCol);
  if (features.includes(opts.label)) throw dataError(`${source}: '${opts.label}' cannot be both the label and a feature`);
  const featureCols = features.map((name) => {
    const i = header.indexOf(name);
    if (i < 0) throw dataError(`${source}: feature column '${name}' not found; the columns are ${listColumns(header, name)}`);
    return i;
  });
  if (featureCols.length === 0) throw dataError(`${source}: no feature columns besides the label '${opts.label}'`);
  if (table.rows.length === 0) throw dataError(`${source}: no data rows after the header`);

  const byColumn: Record<string, number> = {};
  const kept: number[] = [];
  for (let r = 0; r < table.rows.length; r++) {
    const row = table.rows[r];
    let missing = false;
    for (const c of [...featureCols, labelCol]) {
      if (MISSING.has(row[c].toLowerCase())) {
        byColumn[header[c]] = (byColumn[header[c]] ?? 0) + 1;
        missing = true;
      }
    }
    if (!missing) kept.push(r);
  }
  if (kept.length === 0) throw dataError(`${source}: all ${table.rows.length} rows have missing values; nothing to use`);

  const x = new Float32Array(kept.length * featureCols.length);
  kept.forEach((r, k) => {
    const row = table.rows[r];
    featureCols.forEach((c, j) => {
      const cell = row[c];
      if (!NUMBER.test(cell)) throw dataError(`${source} line ${table.lines[r]}: feature '${header[c]}' is not numeric ('${clip(cell)}'); only numeric features are supported`);
      const v = Number(cell);
      if (!Number.isFinite(v) || Math.abs(v) > 3.4e38) throw dataError(`${source} line ${table.lines[r]}: feature '${header[c]}' is out of float32 range (${clip(cell)})`);
      x[k * featureCols.length + j] = v;
    });
  });

  const rawLabels = kept.map((r) => table.rows[r][labelCol]);
  let y: Float64Array;
  let classes: string[] | undefined;
  if (opts.task === 'regression') {
    y = Float64Array.from(rawLabels, (v, k) => {
      if (!NUMBER.test(v)) throw dataError(`${source} line ${table.lines[kept[k]]}: label '${opts.label}' is not numeric ('${clip(v)}'); a regression target must be a number`);
      return Number(v);
    });
  } else {
    classes = classOrder(rawLabels, opts.classes);
    const index = new Map(classes.map((c, i) => [c, i]));
    y = Float64Array.from(rawLabels, (v) => index.get(v)!);
    if (!opts.classes && classes.length < 2) throw dataError(`${source}: label '${opts.label}' has a single class ('${classes[0]}'); a classifier needs at least two`);
  }
  return {
    source,
    sha256,
    features,
    label: opts.label,
    task: opts.task,
    rows: kept.length,
    x,
    y,
    classes,
    totalRows: table.rows.length,
    dropped: { rows: table.rows.length - kept.length, byColumn },
  };
}

/** Known classes first, in their order; the others sorted (numerically when they all are numbers). */
function classOrder(values: string[], known: readonly string[] = []): string[] {
  const extra = [...new Set(values)].filter((v) => !known.includes(v));
  const numeric = extra.every((v) => NUMBER.test(v));
  extra.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return [...known, ...extra];
}

/**
 * The columns for an error message: numbered runs collapsed (`'pixel_0_0' … 'pixel_7_7' (64
 * like pixel_N_N)`), so a wide file still shows every distinct name, the label at its end included;
 * with `wanted`, the nearest name as a suggestion.
 */
export function listColumns(header: string[], wanted?: string): string {
  const groups: string[] = [];
  for (let i = 0; i < header.length; ) {
    const key = header[i].replace(/\d+/g, 'N');
    let j = i;
    while (j + 1 < header.length && header[j + 1].replace(/\d+/g, 'N') === key && key !== header[i]) j++;
    groups.push(j - i >= 2 ? `'${header[i]}' … '${header[j]}' (${j - i + 1} like ${key})` : header.slice(i, j + 1).map((h) => `'${h}'`).join(', '));
    i = j + 1;
  }
  // Still long: the first and the last ones (a label column is usually last).
  const shown = groups.length > 16 ? [...groups.slice(0, 8), `… ${groups.length - 12} more …`, ...groups.slice(-4)] : groups;
  const text = `${shown.join(', ')}${header.length > 12 ? ` (${header.length} in all)` : ''}`;
  const near = wanted === undefined ? undefined : nearest(wanted, header);
  return near ? `${text}; did you mean '${near}'?` : text;
}

/** The column name closest to `wanted` (case-insensitive, at most 2 edits), if any. */
function nearest(wanted: string, names: string[]): string | undefined {
  const w = wanted.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const d = editDistance(w, name.toLowerCase());
    if (d <= Math.min(2, Math.floor(w.length / 2)) && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function clip(s: string): string {
  return s.length > 30 ? `${s.slice(0, 30)}…` : s;
}

/** The rows `indices` of a dataset's features as one flat array (row-major). */
export function selectRows(x: Float32Array, cols: number, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * cols);
  indices.forEach((r, k) => out.set(x.subarray(r * cols, (r + 1) * cols), k * cols));
  return out;
}
