import { classificationMetrics, regressionMetrics, type ClassificationMetrics, type RegressionMetrics } from '../metrics/index.js';
import { argmaxRows } from './predict.js';

export type Evaluation = { task: 'classification'; metrics: ClassificationMetrics } | { task: 'regression'; metrics: RegressionMetrics };

/**
 * Score model outputs against targets. Classification: `probabilities` rows of `labels.length`
 * values, `truth` class names; regression: one value per row and numeric targets.
 */
export function scoreClassification(probabilities: Float32Array, labels: readonly string[], truth: readonly string[]): Evaluation {
  const pred = argmaxRows(probabilities, labels.length).map((i) => labels[i]);
  return { task: 'classification', metrics: classificationMetrics(truth, pred, labels) };
}

export function scoreRegression(values: Float32Array, truth: ArrayLike<number>): Evaluation {
  return { task: 'regression', metrics: regressionMetrics(truth, values) };
}

/** The headline numbers of an evaluation, as stored in bundle metrics and the run log. */
export function summarize(e: Evaluation): Record<string, number> {
  if (e.task === 'classification') {
    const m = e.metrics;
    return { accuracy: m.accuracy, macroF1: m.macro.f1, weightedF1: m.weighted.f1, rows: m.rows };
  }
  const m = e.metrics;
  return { mse: m.mse, rmse: m.rmse, mae: m.mae, r2: m.r2, rows: m.rows };
}

/** How close two models' outputs are: largest absolute difference and top-1 agreement (classifiers). */
export function agreement(a: Float32Array, b: Float32Array, width: number): { maxAbsDiff: number; top1?: number } {
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i] - b[i]));
  if (width < 2) return { maxAbsDiff };
  const pa = argmaxRows(a, width);
  const pb = argmaxRows(b, width);
  return { maxAbsDiff, top1: pa.filter((p, i) => p === pb[i]).length / pa.length };
}
