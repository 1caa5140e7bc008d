/** Precision, recall, F1 and support of one class. */
export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Rows whose true class this is. */
  support: number;
}

export interface AverageMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Everything a classification report shows. */
export interface ClassificationMetrics {
  rows: number;
  accuracy: number;
  /** Classes in report order: the known order first, then others seen in the data, sorted. */
  labels: string[];
  perClass: ClassMetrics[];
  /** Unweighted mean over the classes (a class never true still counts, as in scikit-learn). */
  macro: AverageMetrics;
  /** Mean weighted by support (classes never true weigh nothing). */
  weighted: AverageMetrics;
  /** confusion[t][p]: rows of true class labels[t] predicted as labels[p]. */
  confusion: number[][];
}

/**
 * Classification metrics over the classes that occur in `yTrue` or `yPred` (scikit-learn's
 * `classification_report` semantics, with `zero_division=0`): a class never predicted has
 * precision 0, a class never true has recall 0 and support 0, and F1 is 0 whenever precision
 * and recall are both 0. `order` (e.g. a model's labels) fixes the order of the classes it names.
 */
export function classificationMetrics(yTrue: readonly string[], yPred: readonly string[], order: readonly string[] = []): ClassificationMetrics {
  if (yTrue.length !== yPred.length) throw new Error(`classificationMetrics: ${yTrue.length} true labels but ${yPred.length} predictions`);
  if (yTrue.length === 0) throw new Error('classificationMetrics: no rows');
  const seen = new Set([...yTrue, ...yPred]);
  const known = order.filter((l) => seen.has(l));
  const rest = [...seen].filter((l) => !order.includes(l)).sort(compareLabels);
  const labels = [...known, ...rest];
  const index = new Map(labels.map((l, i) => [l, i]));
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) {
    confusion[index.get(yTrue[i])!][index.get(yPred[i])!]++;
    if (yTrue[i] === yPred[i]) correct++;
  }
  const perClass = labels.map((label, c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
  const rows = yTrue.length;
  const mean = (f: (m: ClassMetrics) => number) => perClass.reduce((a, m) => a + f(m), 0) / k;
  const wmean = (f: (m: ClassMetrics) => number) => perClass.reduce((a, m) => a + f(m) * m.support, 0) / rows;
  return {
    rows,
    accuracy: correct / rows,
    labels,
    perClass,
    macro: { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1), support: rows },
    weighted: { precision: wmean((m) => m.precision), recall: wmean((m) => m.recall), f1: wmean((m) => m.f1), support: rows },
    confusion,
  };
}

/** Numeric labels in numeric order, otherwise code-point order. */
function compareLabels(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}
