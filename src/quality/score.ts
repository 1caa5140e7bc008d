import { referenceAnchor } from '../bundle/index.js';
import type { ServedModel } from '../engine/index.js';
import { rowsPaged } from '../feedback/paged.js';
import type { LabelledBatch, LabelledRows } from '../feedback/types.js';
import { classificationMetrics, regressionMetrics } from '../training/metrics/index.js';

/**
 * Labelled raw rows to score versions on. Classification truth is kept as label *names*, so
 * two versions whose label order differs are still compared on what they mean.
 */
export interface LabelledSet {
  task: 'classification' | 'regression';
  /** rows x features, raw (as clients send them; the model standardises). */
  x: Float32Array;
  rows: number;
  features: number;
  /** Classification: true label names. */
  truth: string[];
  /** Regression: true values. */
  values: Float64Array;
  /** Where the rows came from: bundle anchor sets and the device's holdout. */
  anchorRows: number;
  holdoutRows: number;
}

/** How one version did on a LabelledSet. */
export interface ScoreResult {
  version: string;
  rows: number;
  /** Per row: predicted class index (classification) or value (regression). */
  predicted: Float64Array;
  /** Classification: predicted label names, and whether each row is right. */
  predictedLabels: string[];
  correct: Uint8Array;
  /** Regression: absolute error per row. */
  absError: Float64Array;
  accuracy?: number;
  macroF1?: number;
  mae?: number;
  rmse?: number;
}

/** Whether a version can be scored on labelled rows: one float32 row input, classifier or regressor. */
export function scorable(model: ServedModel): boolean {
  return model.inputs.length === 1 && model.inputs[0].dtype === 'float32' && (model.manifest.task === 'classification' || model.manifest.task === 'regression');
}

/**
 * Score a version on labelled raw rows: chunks of at most `maxBatch` rows go through the
 * model's own queue (one engine call at a time, so serving is never raced), each on a copy of
 * the rows because predict standardises its feeds in place.
 */
export async function scoreModel(model: ServedModel, set: LabelledSet, opts: { maxBatch?: number; timeoutMs?: number } = {}): Promise<ScoreResult> {
  const maxBatch = Math.max(1, opts.maxBatch ?? 32);
  const f = set.features;
  const predicted = new Float64Array(set.rows);
  const predictedLabels: string[] = [];
  for (let start = 0; start < set.rows; start += maxBatch) {
    const end = Math.min(set.rows, start + maxBatch);
    const feeds = { [model.inputs[0].name]: set.x.slice(start * f, end * f) };
    const { predictions } = await model.predict(feeds, end - start, Date.now() + (opts.timeoutMs ?? 30_000));
    for (let i = 0; i < predictions.length; i++) {
      const p = predictions[i];
      if ('index' in p) {
        predicted[start + i] = p.index;
        predictedLabels.push(p.label);
      } else if ('value' in p) predicted[start + i] = p.value;
      else if ('values' in p) predicted[start + i] = p.values[0];
    }
  }
  const result: ScoreResult = { version: model.version, rows: set.rows, predicted, predictedLabels, correct: new Uint8Array(set.rows), absError: new Float64Array(set.rows) };
  if (set.rows === 0) return result;
  if (set.task === 'classification') {
    for (let i = 0; i < set.rows; i++) result.correct[i] = predictedLabels[i] === set.truth[i] ? 1 : 0;
    const m = classificationMetrics(set.truth, predictedLabels, model.manifest.labels ?? []);
    result.accuracy = m.accuracy;
    result.macroF1 = m.macro.f1;
  } else {
    for (let i = 0; i < set.rows; i++) result.absError[i] = Math.abs(predicted[i] - set.values[i]);
    const m = regressionMetrics(set.values, predicted);
    result.mae = m.mae;
    result.rmse = m.rmse;
  }
  return result;
}

/** A label index stored by the feedback store, named with the labels of the version that served it. */
export type LabelNamer = (index: number, version: string | null) => string;

/** Name stored label indices: the labels of the row's version when it is one of `models`, else the first model's. */
export function labelNamer(models: readonly (ServedModel | undefined)[]): LabelNamer {
  const known = models.filter((m): m is ServedModel => m !== undefined);
  return (index, version) => {
    const labels = (known.find((m) => m.version === version) ?? known[0])?.manifest.labels;
    return labels?.[index] ?? String(index);
  };
}

/** Append labelled store rows (raw) to a set under construction. */
export function pushBatch(into: SetBuilder, batch: LabelledBatch, name: LabelNamer): void {
  if (batch.features !== into.features) return;
  for (let r = 0; r < batch.rows; r++) {
    for (const v of batch.x.subarray(r * batch.features, (r + 1) * batch.features)) into.x.push(v);
    if (into.task === 'classification') into.truth.push(name(batch.y[r], batch.versions[r]));
    else into.values.push(batch.y[r]);
  }
}

interface SetBuilder {
  task: 'classification' | 'regression';
  features: number;
  x: number[];
  truth: string[];
  values: number[];
}

/**
 * The gate's rows: the anchor sets of the target and of the serving version (the toolchain's
 * frozen labelled sample; two when they differ, so a bundle cannot grade itself on its own
 * answers alone), then the newest `holdoutRows` holdout rows of the device's labelled store.
 */
export async function gateRows(target: ServedModel, serving: ServedModel | undefined, labelled: LabelledRows | undefined, holdoutRows: number): Promise<LabelledSet> {
  const task = target.manifest.task === 'regression' ? 'regression' : 'classification';
  const b: SetBuilder = { task, features: target.inputs[0].rowSize, x: [], truth: [], values: [] };
  const seen = new Set<string>();
  let anchorRows = 0;
  for (const m of [target, serving]) {
    if (!m || m.manifest.reference === undefined) continue;
    // A bad profile is the drift monitor's to report; the gate scores the anchor rows when they are sound.
    const anchor = referenceAnchor(m.manifest.reference);
    if (!anchor || anchor.rows.length === 0 || anchor.rows[0].length !== b.features) continue;
    const key = anchorKey(anchor.rows, anchor.truth);
    if (seen.has(key)) continue;
    seen.add(key);
    const labels = m.manifest.labels;
    for (let i = 0; i < anchor.rows.length; i++) {
      const t = anchor.truth[i];
      for (const v of anchor.rows[i]) b.x.push(v);
      if (task === 'classification') b.truth.push(typeof t === 'number' && labels && !labels.includes(String(t)) ? (labels[t] ?? String(t)) : String(t));
      else b.values.push(Number(t));
      anchorRows++;
    }
  }
  let holdout = 0;
  if (labelled && holdoutRows > 0) {
    const batch = await rowsPaged(labelled, target.name, { holdout: true, limit: holdoutRows });
    if (batch.features === b.features) {
      pushBatch(b, batch, labelNamer([serving, target]));
      holdout = batch.rows;
    }
  }
  const rows = anchorRows + holdout;
  return { task, x: Float32Array.from(b.x), rows, features: b.features, truth: b.truth, values: Float64Array.from(b.values), anchorRows, holdoutRows: holdout };
}

/** Whether two anchor sets are the same rows (a bundle and its fine-tuned child share theirs): a checksum, not a JSON copy of them. */
function anchorKey(rows: readonly (readonly number[])[], truth: readonly (string | number)[]): string {
  let h = 0;
  for (const row of rows) for (const v of row) h = (h * 31 + Math.round(v * 1e6)) | 0;
  return `${rows.length}:${h}:${truth.join(',')}`;
}
