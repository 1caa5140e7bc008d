import { promises as fs } from 'node:fs';
import { asEdgeloopError, EdgeloopError } from '../../errors.js';
import { checkTargets, engineBackendFirst, EVAL_ENGINE_OPTIONS, prepareData, runMetrics, trainPrepared, type TrainPipelineOptions, type TrainPipelineResult } from '../pipeline/index.js';
import { inferShapes, parseModelSpec } from '../spec/index.js';
import { crossValidate, higherIsBetter, type TuneMetric } from './cross-validate.js';
import { applyParams, expandGrid, formatParams, readGrid, type ParamGrid, type ParamSet } from './grid.js';

export interface TunePipelineOptions extends Omit<TrainPipelineOptions, 'spec'> {
  /** The base spec file; grid values are set into it. */
  spec: string;
  /** A grid file or inline JSON, or a parsed grid. */
  grid: string | ParamGrid;
  folds?: number;
  /** Default: accuracy for classifiers, r2 for regressors. */
  metric?: TuneMetric;
  /** Called when a trial (one grid point, all folds) finishes. */
  onTrial?: (t: RankedTrial, done: number, total: number) => void;
}

export interface RankedTrial {
  trial: number;
  rank: number;
  params: ParamSet;
  scores: number[];
  mean: number;
  std: number;
  durationMs: number;
}

export interface TunePipelineResult extends TrainPipelineResult {
  metric: TuneMetric;
  folds: number;
  trials: RankedTrial[];
}

/**
 * `edgeloop tune`: grid search with k-fold cross-validation on the training+validation rows,
 * then the best point retrained like `train` (validation, early stopping) and written as
 * bundles with their test-split metrics. Every point is validated before any training.
 */
export async function tunePipeline(o: TunePipelineOptions): Promise<TunePipelineResult> {
  await checkTargets(o.targets, o.overwrite ?? false);
  const folds = o.folds ?? 5;
  const runId = o.runs?.start('tune', o.targets[0]?.name, { data: o.data, label: o.label, spec: o.spec, grid: o.grid, folds, metric: o.metric, split: o.split, splitSeed: o.splitSeed ?? 1 });
  try {
    const raw = await readSpecJson(o.spec);
    const base = parseModelSpec(raw, o.spec);
    const grid = typeof o.grid === 'string' ? await readGrid(o.grid) : o.grid;
    if (runId !== undefined) o.runs!.mergeParams(runId, { resolvedSpec: base, grid });
    const metric = o.metric ?? (base.task === 'classification' ? 'accuracy' : 'r2');
    if ((base.task === 'classification') !== (metric === 'accuracy' || metric === 'macro_f1')) {
      throw new EdgeloopError('EDGELOOP_USAGE', `--metric ${metric} does not apply to a ${base.task} model`);
    }
    const prepared = await prepareData({ data: o.data, label: o.label, task: base.task, split: o.split, splitSeed: o.splitSeed });
    await engineBackendFirst(o.engine ?? EVAL_ENGINE_OPTIONS, 'in-process');
    const points = expandGrid(grid).map((params) => {
      const where = `${o.spec} with ${formatParams(params)}`;
      let spec = parseModelSpec(applyParams(raw, params, o.spec), where);
      if (o.epochs) spec = { ...spec, training: { ...spec.training, epochs: o.epochs } };
      if (spec.task !== base.task) throw new EdgeloopError('EDGELOOP_SPEC_INVALID', `${where}: the grid may not change 'task'`);
      inferShapes(spec, prepared.dataset.features.length, where);
      return { params, spec, where };
    });

    const results: Omit<RankedTrial, 'rank'>[] = [];
    for (const [i, point] of points.entries()) {
      const cv = await crossValidate(prepared, point.spec, point.where, { folds, seed: o.splitSeed ?? 1, metric, backend: o.backend });
      const trial = { trial: i + 1, params: point.params, scores: cv.scores, mean: cv.mean, std: cv.std, durationMs: cv.durationMs };
      results.push(trial);
      o.onTrial?.({ ...trial, rank: 0 }, i + 1, points.length);
      if (o.signal?.aborted) break;
    }
    const sign = higherIsBetter(metric) ? -1 : 1;
    const ranked = [...results].sort((a, b) => sign * (a.mean - b.mean) || a.trial - b.trial).map((t, i) => ({ ...t, rank: i + 1 }));
    if (runId !== undefined) for (const t of ranked) o.runs!.addTrial(runId, { trial: t.trial, rank: t.rank, params: t.params, scoreMean: t.mean, scoreStd: t.std, foldScores: t.scores, durationMs: t.durationMs });

    const best = points[ranked[0].trial - 1];
    const tuning = { metric, folds, grid, best: { params: best.params, cvMean: ranked[0].mean, cvStd: ranked[0].std }, trials: ranked.slice(0, 10).map((t) => ({ rank: t.rank, params: t.params, mean: t.mean, std: t.std })) };
    const result = await trainPrepared(prepared, best.spec, best.where, { ...o, runId, kind: 'tune', tuning });
    if (runId !== undefined) {
      o.runs!.complete(runId, { ...runMetrics(result), metric, best: best.params, cvMean: ranked[0].mean, cvStd: ranked[0].std }, result.bundles.map((b) => ({ dir: b.target.dir, name: b.manifest.name, variant: b.target.variant })));
    }
    return { ...result, runId, metric, folds, trials: ranked };
  } catch (err) {
    if (runId !== undefined) o.runs!.fail(runId, asEdgeloopError(err).message);
    throw err;
  }
}

async function readSpecJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_SPEC_INVALID', `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such spec file' : (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_SPEC_INVALID', `${file}: not valid JSON (${(err as Error).message})`);
  }
}


