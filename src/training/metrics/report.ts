import type { ClassificationMetrics } from './classification.js';
import type { RegressionMetrics } from './regression.js';

/**
 * The familiar classification-report layout (scikit-learn's): one line per class with
 * precision, recall, f1-score and support, then accuracy, macro and weighted averages.
 */
export function formatClassificationReport(m: ClassificationMetrics, digits = 3): string {
  const w = Math.max(...[...m.labels, 'weighted avg'].map((n) => n.length), digits);
  const col = Math.max(9, digits + 2);
  // As scikit-learn lays it out: the label right-aligned, a space, then ' ' + a 9-wide cell per column.
  const cells = (values: (number | string)[]) => values.map((v) => ' ' + (typeof v === 'number' ? v.toFixed(digits) : v).padStart(col)).join('');
  const line = (label: string, values: (number | string)[]) => (label.padStart(w) + ' ' + cells(values)).trimEnd();
  const lines = [line('', ['precision', 'recall', 'f1-score', 'support']), ''];
  for (const c of m.perClass) lines.push(line(c.label, [c.precision, c.recall, c.f1, String(c.support)]));
  lines.push('');
  lines.push(line('accuracy', ['', '', m.accuracy, String(m.rows)]));
  lines.push(line('macro avg', [m.macro.precision, m.macro.recall, m.macro.f1, String(m.macro.support)]));
  lines.push(line('weighted avg', [m.weighted.precision, m.weighted.recall, m.weighted.f1, String(m.weighted.support)]));
  return lines.join('\n') + '\n';
}

/** The confusion matrix: one row per true class, one column per predicted class. */
export function formatConfusionMatrix(m: ClassificationMetrics): string {
  const corner = 'true \\ pred';
  const w0 = Math.max(corner.length, ...m.labels.map((l) => l.length));
  const cw = Math.max(...m.labels.map((l) => l.length), ...m.confusion.flat().map((v) => String(v).length));
  const head = corner.padEnd(w0) + ' ' + m.labels.map((l) => l.padStart(cw)).join(' ');
  const rows = m.labels.map((l, t) => l.padStart(w0) + ' ' + m.confusion[t].map((v) => String(v).padStart(cw)).join(' '));
  return [head, ...rows].join('\n') + '\n';
}

export function formatRegressionReport(m: RegressionMetrics): string {
  const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(4) : v.toFixed(4));
  return [`rows  ${m.rows}`, `MSE   ${fmt(m.mse)}`, `RMSE  ${fmt(m.rmse)}`, `MAE   ${fmt(m.mae)}`, `R²    ${m.r2.toFixed(4)}`].join('\n') + '\n';
}
