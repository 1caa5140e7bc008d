import path from 'node:path';
import type { Dataset } from './dataset.js';
import { splitRows, type Split, type SplitFractions } from './split.js';

/**
 * Where a model's data came from and how it was split, as recorded in its bundle: enough to
 * rebuild exactly the same train/validation/test rows from the same file.
 */
export interface DataProvenance {
  /** The data file, relative to the working directory when inside it (never a machine's absolute path). */
  file: string;
  sha256: string;
  label: string;
  features: string[];
  rows: number;
  totalRows: number;
  dropped: Dataset['dropped'];
  split: { seed: number; fractions: SplitFractions; stratified: boolean; rows: { train: number; validation: number; test: number } };
}

/** A path to record in a bundle: relative to the working directory, else just the file name. */
export function portablePath(file: string): string {
  const rel = path.relative(process.cwd(), path.resolve(file));
  return rel.startsWith('..') || path.isAbsolute(rel) ? path.basename(file) : rel;
}

/** Split a dataset as a training run does: stratified by class for classifiers. */
export function splitDataset(ds: Dataset, fractions: SplitFractions, seed: number): Split {
  return splitRows(ds.rows, fractions, seed, ds.task === 'classification' ? ds.y : undefined);
}

export function provenanceOf(ds: Dataset, split: Split, fractions: SplitFractions, seed: number): DataProvenance {
  return {
    file: portablePath(ds.source),
    sha256: ds.sha256,
    label: ds.label,
    features: ds.features,
    rows: ds.rows,
    totalRows: ds.totalRows,
    dropped: ds.dropped,
    split: { seed, fractions, stratified: ds.task === 'classification', rows: { train: split.train.length, validation: split.validation.length, test: split.test.length } },
  };
}

/**
 * The split a bundle was trained with, rebuilt from the same data file, or undefined when the
 * file is not the one the bundle recorded (different bytes, label or features).
 */
export function reproduceSplit(ds: Dataset, p: DataProvenance | undefined): Split | undefined {
  if (!p || p.sha256 !== ds.sha256 || p.label !== ds.label || p.features.join('\u0000') !== ds.features.join('\u0000')) return undefined;
  const split = splitDataset(ds, p.split.fractions, p.split.seed);
  const r = p.split.rows;
  return split.train.length === r.train && split.validation.length === r.validation && split.test.length === r.test ? split : undefined;
}
