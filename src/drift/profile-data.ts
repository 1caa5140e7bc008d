import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { rowSize, type Manifest, type ModelSource } from '../bundle/index.js';
import { loadModel, ServedModel, type EngineOptions } from '../engine/index.js';
import { EdgeloopError } from '../errors.js';
import { parseCsv } from '../training/data/index.js';
import type { ProfileData } from './profile-builder.js';

/** A CSV file read for profiling: numeric feature columns in file order, an optional label column. */
export interface ReferenceTable {
  features: string[];
  x: Float32Array;
  rows: number;
  truth?: string[];
  label?: string;
  sha256: string;
  /** Rows left out because a value was missing. */
  dropped: number;
}

const MISSING = new Set(['', 'na', 'n/a', 'nan', 'null', 'none', '?']);
const LABEL_NAMES = ['label', 'target', 'class', 'y'];
const dataError = (m: string) => new EdgeloopError('EDGELOOP_DATA_INVALID', m);

/**
 * Read `file` for a model taking `width` values per row. Without `label`, the file must have
 * exactly `width` columns, or `width + 1` with one named label/target/class/y (that one is the
 * label). Rows with a missing value are dropped and counted; any other non-number is an error.
 */
export async function readReferenceCsv(file: string, width: number, label?: string): Promise<ReferenceTable> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw dataError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const table = parseCsv(bytes.toString('utf8'), file);
  const { header } = table;
  let labelCol = -1;
  if (label !== undefined) {
    labelCol = header.indexOf(label);
    if (labelCol < 0) throw dataError(`${file}: label column '${label}' not found`);
  } else if (header.length === width + 1) {
    labelCol = header.findIndex((h) => LABEL_NAMES.includes(h.toLowerCase()));
    if (labelCol < 0) throw dataError(`${file}: ${header.length} columns for a model of ${width} inputs; name the label column with --label`);
  }
  const cols = header.map((_, i) => i).filter((i) => i !== labelCol);
  if (cols.length !== width) throw dataError(`${file}: ${cols.length} feature columns, the model takes ${width} values per row${labelCol < 0 ? ' (name a label column with --label)' : ''}`);
  const kept: number[] = [];
  for (let r = 0; r < table.rows.length; r++) if (!cols.some((c) => MISSING.has(table.rows[r][c].toLowerCase()))) kept.push(r);
  if (kept.length < 2) throw dataError(`${file}: ${kept.length} complete rows; a reference profile needs at least 2`);
  const x = new Float32Array(kept.length * width);
  kept.forEach((r, k) => {
    cols.forEach((c, j) => {
      const v = Number(table.rows[r][c]);
      if (!Number.isFinite(v)) throw dataError(`${file} line ${table.lines[r]}: '${header[c]}' is not a number ('${table.rows[r][c].slice(0, 30)}')`);
      x[k * width + j] = v;
    });
  });
  return {
    features: cols.map((c) => header[c]),
    x,
    rows: kept.length,
    truth: labelCol >= 0 ? kept.map((r) => table.rows[r][labelCol]) : undefined,
    label: labelCol >= 0 ? header[labelCol] : undefined,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    dropped: table.rows.length - kept.length,
  };
}

const ENGINE_DEFAULTS: EngineOptions = {
  onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  tfjs: { backends: ['tensorflow', 'wasm', 'cpu'] },
};

/**
 * Run the model on the table exactly as the daemon serves it (ServedModel: the bundle's
 * standardisation, softmax of logits, rounding) and return the profile inputs.
 */
export async function runModelOnTable(source: ModelSource, table: ReferenceTable, engineOpts: EngineOptions = ENGINE_DEFAULTS): Promise<{ manifest: Manifest; data: ProfileData }> {
  const { manifest, engine } = await loadModel(source, engineOpts);
  try {
    const width = rowSize(manifest.inputs[0]);
    if (width !== table.features.length) throw dataError(`the data has ${table.features.length} feature columns, model input '${manifest.inputs[0].name}' takes ${width}`);
    if (engine.inputs.length !== 1) throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${manifest.name}: profiles cover single-input models; this one has ${engine.inputs.length} inputs`);
    const batch = 256;
    const served = new ServedModel(manifest, engine, { maxBatch: batch, maxDelayMs: 0, queueLimit: 1 << 20 });
    const predictions: ProfileData['predictions'] = [];
    let labels: string[] | undefined;
    let outputs: Float32Array | undefined;
    for (let r = 0; r < table.rows; r += batch) {
      const n = Math.min(batch, table.rows - r);
      const feed = table.x.slice(r * width, (r + n) * width); // a copy: predict() standardises in place
      const { predictions: preds } = await served.predict({ [engine.inputs[0].name]: feed }, n, Date.now() + 600_000);
      for (const p of preds) {
        if ('probabilities' in p) {
          outputs ??= new Float32Array(table.rows * p.probabilities.length);
          labels ??= manifest.labels ?? p.probabilities.map((_, i) => String(i));
          outputs.set(p.probabilities, predictions.length * p.probabilities.length);
          predictions.push({ index: p.index, confidence: p.confidence });
        } else if ('value' in p) {
          outputs ??= new Float32Array(table.rows);
          outputs[predictions.length] = p.value;
          predictions.push({ value: p.value });
        } else {
          predictions.push({});
        }
      }
    }
    await served.drain();
    const task = manifest.task === 'regression' && !outputs ? 'embedding' : manifest.task;
    return { manifest, data: { features: table.features, x: table.x, rows: table.rows, task, predictions, outputs, labels, truth: table.truth } };
  } finally {
    await engine.dispose();
  }
}
