import { EdgeloopError } from '../../errors.js';
import { fitStandardizer, kFolds, prng, shuffle, standardize, targetScale } from '../data/index.js';
import { layersPredict, predictAll, scoreOutputs, type Evaluation } from '../evaluate/index.js';
import type { PreparedData } from '../pipeline/prepare.js';
import { makeFitJob } from '../pipeline/prepare.js';
import type { ModelSpec } from '../spec/index.js';
import { runFit, type TrainingBackend } from '../trainer/index.js';

/** What a tuning run ranks by. */
export const TUNE_METRICS = ['accuracy', 'macro_f1', 'r2', 'rmse', 'mae'] as const;
export type TuneMetric = (typeof TUNE_METRICS)[number];

/** Whether a larger value of the metric is better. */
export function higherIsBetter(m: TuneMetric): boolean {
  return m === 'accuracy' || m === 'macro_f1' || m === 'r2';
}

export function metricValue(e: Evaluation, m: TuneMetric): number {
  if (e.task === 'classification') {
    if (m === 'accuracy') return e.metrics.accuracy;
    if (m === 'macro_f1') return e.metrics.macro.f1;
  } else {
    if (m === 'r2') return e.metrics.r2;
    if (m === 'rmse') return e.metrics.rmse;
    if (m === 'mae') return e.metrics.mae;
  }
  throw new EdgeloopError('EDGELOOP_USAGE', `--metric ${m} does not apply to a ${e.task} model`);
}

export interface CrossValidation {
  scores: number[];
  mean: number;
  std: number;
  durationMs: number;
}

/**
 * k-fold cross-validation of one spec on the training and validation rows of a prepared
 * dataset (its test split is never touched). Each fold standardises on its own training rows;
 * a spec with early stopping holds out part of each fold's training rows for it, so the
 * scored fold stays unseen.
 */
export async function crossValidate(
  p: PreparedData,
  spec: ModelSpec,
  where: string,
  o: { folds: number; seed: number; metric: TuneMetric; backend?: TrainingBackend | 'auto'; onFold?: (fold: number, score: number) => void },
): Promise<CrossValidation> {
  const started = performance.now();
  const ds = p.dataset;
  const strata = ds.task === 'classification' ? ds.y : undefined;
  const rows = [...p.split.train, ...p.split.validation];
  const folds = kFolds(rows, o.folds, o.seed, strata);
  const fractions = p.provenance.split.fractions;
  const innerVal = spec.training.earlyStopping ? fractions.validation / (fractions.train + fractions.validation) || 0.2 : 0;
  const scores: number[] = [];
  for (let f = 0; f < folds.length; f++) {
    const heldOut = folds[f];
    const fitRows = folds.filter((_, i) => i !== f).flat();
    const [trainRows, valRows] = innerSplit(fitRows, innerVal, o.seed + f, strata);
    const cols = ds.features.length;
    const standardizer = fitStandardizer(ds.x, cols, trainRows);
    const fold: PreparedData = {
      ...p,
      split: { train: trainRows, validation: valRows, test: heldOut },
      standardizer,
      targetScale: ds.task === 'regression' ? targetScale(ds.y, trainRows) : undefined,
      xStd: standardize(ds.x, standardizer),
    };
    const { model } = await runFit(makeFitJob(fold, spec, where, { backend: o.backend }));
    try {
      const x = new Float32Array(heldOut.length * cols);
      heldOut.forEach((r, k) => x.set(fold.xStd.subarray(r * cols, (r + 1) * cols), k * cols));
      const out = await predictAll(layersPredict(model), x, heldOut.length);
      const score = metricValue(scoreOutputs({ task: ds.task, labels: ds.classes, outputKind: 'probabilities' }, ds, heldOut, out.data, out.width), o.metric);
      scores.push(score);
      o.onFold?.(f + 1, score);
    } finally {
      model.dispose();
    }
  }
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const std = Math.sqrt(scores.reduce((a, s) => a + (s - mean) ** 2, 0) / scores.length);
  return { scores, mean, std, durationMs: Math.round(performance.now() - started) };
}

/** Split rows into (train, validation) with `fraction` for validation, stratified when strata are given. */
function innerSplit(rows: number[], fraction: number, seed: number, strata?: ArrayLike<number>): [number[], number[]] {
  if (fraction <= 0) return [rows, []];
  const rand = prng(seed);
  const groups = new Map<number, number[]>();
  for (const r of rows) {
    const k = strata ? strata[r] : 0;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const train: number[] = [];
  const val: number[] = [];
  for (const k of [...groups.keys()].sort((a, b) => a - b)) {
    const g = shuffle(groups.get(k)!, rand);
    const n = Math.round(g.length * fraction);
    val.push(...g.slice(0, n));
    train.push(...g.slice(n));
  }
  return [shuffle(train, rand), val];
}
