import { EdgeloopError } from '../../errors.js';
import {
  DEFAULT_SPLIT,
  fitStandardizer,
  provenanceOf,
  readCsvDataset,
  selectRows,
  splitDataset,
  standardize,
  targetScale,
  type Dataset,
  type DataProvenance,
  type Split,
  type SplitFractions,
  type Standardizer,
  type Task,
} from '../data/index.js';
import { inferShapes, type ModelSpec } from '../spec/index.js';
import type { FitData, FitJob } from '../trainer/index.js';

/** A dataset split and standardised, ready to fit and to evaluate. */
export interface PreparedData {
  dataset: Dataset;
  split: Split;
  /** Fitted on the training rows; stored in bundles as preprocessing.standardize. */
  standardizer: Standardizer;
  /** Regression: mean/std of the training target. */
  targetScale?: { mean: number; std: number };
  /** Every row standardised (row-major). */
  xStd: Float32Array;
  provenance: DataProvenance;
  outputUnits: number;
}

export interface PrepareOptions {
  data: string;
  label: string;
  task: Task;
  split?: SplitFractions;
  splitSeed?: number;
}

/** Smallest training split that can train anything sensible. */
const MIN_TRAIN_ROWS = 2;

/** Read, split (stratified for classifiers) and standardise a CSV file. */
export async function prepareData(opts: PrepareOptions): Promise<PreparedData> {
  const dataset = await readCsvDataset(opts.data, { label: opts.label, task: opts.task });
  return prepareDataset(dataset, opts.split ?? DEFAULT_SPLIT, opts.splitSeed ?? 1);
}

export function prepareDataset(dataset: Dataset, fractions: SplitFractions, seed: number): PreparedData {
  const split = splitDataset(dataset, fractions, seed);
  if (split.train.length < MIN_TRAIN_ROWS || split.test.length === 0) {
    throw new EdgeloopError('EDGELOOP_DATA_INVALID', `${dataset.source}: ${dataset.rows} usable rows give ${split.train.length} training and ${split.test.length} test rows; more data is needed`);
  }
  if (fractions.validation > 0 && split.validation.length === 0) {
    throw new EdgeloopError('EDGELOOP_DATA_INVALID', `${dataset.source}: ${dataset.rows} usable rows leave no validation rows; add data or set the validation split to 0`);
  }
  const cols = dataset.features.length;
  const standardizer = fitStandardizer(dataset.x, cols, split.train);
  return {
    dataset,
    split,
    standardizer,
    targetScale: dataset.task === 'regression' ? targetScale(dataset.y, split.train) : undefined,
    xStd: standardize(dataset.x, standardizer),
    provenance: provenanceOf(dataset, split, fractions, seed),
    outputUnits: dataset.task === 'classification' ? dataset.classes!.length : 1,
  };
}

/** Rows of a prepared dataset as fit data (standardised features, targets). */
export function fitData(p: PreparedData, rows: readonly number[], xStd = p.xStd): FitData {
  const cols = p.dataset.features.length;
  return { x: selectRows(xStd, cols, rows), y: Float32Array.from(rows, (r) => p.dataset.y[r]), rows: rows.length };
}

/** Check a spec against the data (task, input shape) and make the trainer's job. */
export function makeFitJob(p: PreparedData, spec: ModelSpec, where: string, opts: Pick<FitJob, 'backend' | 'name'> = {}): FitJob {
  if (spec.task !== p.dataset.task) throw new EdgeloopError('EDGELOOP_SPEC_INVALID', `${where}: 'task' is ${spec.task} but the data was read for ${p.dataset.task}`);
  inferShapes(spec, p.dataset.features.length, where);
  return {
    spec,
    features: p.dataset.features.length,
    outputUnits: p.outputUnits,
    targetScale: p.targetScale,
    train: fitData(p, p.split.train),
    validation: p.split.validation.length ? fitData(p, p.split.validation) : undefined,
    backend: opts.backend,
    name: opts.name,
  };
}
